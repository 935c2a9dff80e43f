//! metadata-store: the single writer of the image documents, and the query API that serves them.
//!
//! It consumes storage notifications and every pipeline event, folds each into the image's
//! document with [`reduce`] (a pure function: replaying an event changes nothing), and answers
//! `GET /api/images`, `GET /api/images/{id}` and `GET /api/tags`.

mod api;
mod change;
mod handler;
mod reduce;

pub use api::{QueryState, router};
pub use change::{DocChange, Upload};
pub use handler::MetadataHandler;
pub use reduce::{Outcome, reduce};

use imgpipe_core::bus::Subscription;
use imgpipe_core::event::Topic;

/// The queue this service consumes and the topics bound to it.
pub fn subscription() -> Subscription {
    Subscription::new(
        "metadata-store",
        &[
            Topic::OBJECT_CREATED,
            Topic::RENDITIONS_READY,
            Topic::TAGS_READY,
            Topic::STAGE_FAILED,
        ],
    )
}
