//! Who is calling: API keys ([`token`]), the caller as a [`Principal`] with a role and tenants,
//! and [`Authenticator`], which checks a presented key against the [`KeyStore`] (with a short
//! cache, so a revocation reaches every process within [`CACHE_TTL`]) and puts the principal on
//! the request for handlers to take.
//!
//! [`KeyStore`]: imgpipe_contract::keys::KeyStore

mod authenticator;
pub mod bootstrap;
pub mod keys_api;
mod principal;
pub mod rate;
pub mod secret_file;
pub mod token;

pub use authenticator::{Authenticator, CACHE_TTL, SESSION_COOKIE, authenticate, presented_key};
pub use principal::{Denied, Principal};
