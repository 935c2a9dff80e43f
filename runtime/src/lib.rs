//! What every imgpipe service runs on, apart from the contract: the worker loop that consumes a
//! queue ([`worker`]), the one error policy of handlers ([`failure`]), a service as a [`Part`]
//! (its routes and its workers), Prometheus metrics and the tracing subscriber.

pub mod failure;
pub mod metrics;
mod outage;
mod part;
pub mod telemetry;
pub mod worker;

pub use part::{Deps, Part, WorkerSpec};
