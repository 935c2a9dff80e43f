//! metadata-store: the single writer of the image documents, and the query API that serves them.
//!
//! It consumes storage notifications and every pipeline event, folds each into the image's
//! document with [`reduce`] (a pure function: replaying an event changes nothing), and answers
//! `GET /api/images`, `GET /api/images/{id}` and `GET /api/tags`.

mod api;
mod change;
mod handler;
mod reduce;

pub use api::{ApiError, FeedSignal, QueryState, feed_signal, router, with_links};
pub use change::{DocChange, Failure, Upload};
pub use handler::MetadataHandler;
pub use reduce::{Ignored, Outcome, reduce};

use std::sync::Arc;

use imgpipe_auth::rate::RateLimiter;
use imgpipe_contract::bus::Subscription;
use imgpipe_contract::config::Config;
use imgpipe_contract::event::Topic;
use imgpipe_runtime::{Deps, Part};

/// Documents written at once. Writes of one document serialise in the database; more than a few
/// only wait on each other's locks.
const CONCURRENCY: usize = 4;

/// The metadata store as a part of a process: the query API, the key API (keys live in its
/// database) and the document writer.
pub fn part(config: &Config, deps: &Deps) -> Part {
    let feed = feed_signal();
    let query = QueryState {
        meta: deps.db.clone(),
        store: deps.store.clone(),
        bus: deps.bus.clone(),
        region: config.object_store.region.clone(),
        feed: feed.clone(),
        stopping: deps.stopping.clone(),
    };
    // One budget per key for browsing and key management alike.
    let limiter = Arc::new(RateLimiter::per_minute(config.access.rate_per_minute));
    let keys =
        imgpipe_auth::keys_api::router(deps.keys.clone(), deps.auth.clone(), limiter.clone());
    let routes = router(query, deps.auth.clone(), limiter).merge(keys);
    let handler = MetadataHandler::new(
        deps.db.clone(),
        config.object_store.originals_bucket.clone(),
    )
    .waking(feed);
    Part::routes(routes).with_worker(subscription(), Arc::new(handler), CONCURRENCY)
}

/// The queue this service consumes and the topics bound to it.
pub fn subscription() -> Subscription {
    Subscription::new(
        "metadata-store",
        &[
            Topic::OBJECT_CREATED,
            Topic::RENDITIONS_READY,
            Topic::TAGS_READY,
            Topic::STAGE_FAILED,
            Topic::STAGE_RETRYING,
        ],
    )
}
