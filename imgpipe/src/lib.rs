//! Composition of the imgpipe services. One process can run any subset of them ([`Roles`]); the
//! `up` command runs all of them over embedded backends, and each service's own command runs the
//! same code alone, so one process and many processes behave the same.

mod access;
pub mod backends;
pub mod dlq;
mod files;
mod headers;
pub mod keys;
mod pipeline;
mod roles;
mod s3_credentials;
mod serve;
mod session;
pub mod tag;
pub mod thumbnail;
mod web;

pub use backends::Backends;
pub use pipeline::{Running, start};
pub use roles::{Roles, pipeline_subscriptions};

#[cfg(test)]
mod test_targets;
