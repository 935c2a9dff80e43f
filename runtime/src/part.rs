//! A service as a part of a process: the HTTP routes it serves and the workers it runs. The
//! binary asks each role it runs for its part and composes them; it knows no service's wiring.

use std::sync::Arc;

use imgpipe_auth::Authenticator;
use imgpipe_contract::bus::{Bus, Subscription};
use imgpipe_contract::db::MetadataDb;
use imgpipe_contract::keys::KeyStore;
use imgpipe_contract::store::ObjectStore;

use crate::metrics::Metrics;
use crate::worker::Handler;

/// What a service may use of its process: the three seams, the keys and the metrics registry.
#[derive(Clone)]
pub struct Deps {
    pub bus: Arc<dyn Bus>,
    pub db: Arc<dyn MetadataDb>,
    pub store: Arc<dyn ObjectStore>,
    /// The API keys (kept in the metadata database).
    pub keys: Arc<dyn KeyStore>,
    /// Checks a request's key; layer it over every route that needs one.
    pub auth: Authenticator,
    /// This process's metrics, served at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Cancelled when the process stops serving HTTP: long-lived responses (event streams)
    /// end then, so the listener can close.
    pub stopping: tokio_util::sync::CancellationToken,
}

/// One queue consumer a service wants run: which queue, which handler, how many at once.
pub struct WorkerSpec {
    pub subscription: Subscription,
    pub handler: Arc<dyn Handler>,
    pub concurrency: usize,
}

/// A started service: routes to merge into the process's router, workers to spawn.
#[derive(Default)]
pub struct Part {
    pub routes: axum::Router,
    pub workers: Vec<WorkerSpec>,
}

impl Part {
    /// A part that only serves HTTP.
    pub fn routes(routes: axum::Router) -> Self {
        Part {
            routes,
            workers: Vec::new(),
        }
    }

    /// Adds a worker.
    pub fn with_worker(
        mut self,
        subscription: Subscription,
        handler: Arc<dyn Handler>,
        concurrency: usize,
    ) -> Self {
        self.workers.push(WorkerSpec {
            subscription,
            handler,
            concurrency,
        });
        self
    }
}
