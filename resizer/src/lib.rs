//! The resizer stage of imgpipe: for each original written to the object store, one decode
//! (under header-checked limits, EXIF orientation applied) yields a JPEG thumbnail, a JPEG
//! preview and a ThumbHash placeholder, which are stored and announced as `RenditionsReady`.
//!
//! [`Renderer`] is the pure, deterministic image work; [`ResizerHandler`] is the bus handler
//! around it.

mod error;
mod handler;
mod limits;
mod placeholder;
mod render;
mod resize;

pub use error::RenderError;
pub use handler::ResizerHandler;
pub use render::{Encoded, Rendered, Renderer};
