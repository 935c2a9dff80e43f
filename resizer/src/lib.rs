//! The resizer stage of imgpipe: for each original written to the object store, one decode
//! (under header-checked limits, EXIF orientation applied, colours converted to sRGB) yields a
//! thumbnail, a preview (JPEG or WebP) and a ThumbHash placeholder, which are stored and
//! announced as `RenditionsReady` with the camera metadata.
//!
//! [`Renderer`] is the pure, deterministic image work; [`ResizerHandler`] is the bus handler
//! around it, rendering within the process's [`DecodeBudget`] (`resizer.decode_memory_mb`).

mod budget;
mod camera;
mod color;
mod error;
mod footprint;
mod handler;
mod heif;
mod limits;
mod placeholder;
mod png;
mod render;
mod resize;

pub use budget::{DecodeBudget, Reservation, render_in_budget};
pub use error::RenderError;
pub use handler::ResizerHandler;
pub use render::{Encoded, Rendered, Renderer};

use std::sync::Arc;

use imgpipe_contract::bus::Subscription;
use imgpipe_contract::config::Config;
use imgpipe_contract::event::Topic;
use imgpipe_runtime::{Deps, Part};

/// The queue this stage consumes and the topics bound to it.
pub fn subscription() -> Subscription {
    Subscription::new("resizer", &[Topic::OBJECT_CREATED])
}

/// The resizer as a part of a process: one worker, no routes.
pub fn part(config: &Config, deps: &Deps) -> Part {
    let handler = ResizerHandler::new(
        Arc::new(Renderer::new(&config.resizer)),
        deps.store.clone(),
        deps.bus.clone(),
        config.object_store.renditions_bucket.clone(),
        config.resizer.max_bytes,
    );
    Part::default().with_worker(
        subscription(),
        Arc::new(handler),
        config.resizer.concurrency,
    )
}
