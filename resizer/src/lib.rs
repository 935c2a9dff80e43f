//! The resizer stage of imgpipe: for each original written to the object store, one decode
//! (under header-checked limits, EXIF orientation applied, colours converted to sRGB) yields a
//! thumbnail, a preview (JPEG or WebP) and a ThumbHash placeholder, which are stored and
//! announced as `RenditionsReady` with the camera metadata.
//!
//! [`Renderer`] is the pure, deterministic image work; [`ResizerHandler`] is the bus handler
//! around it.

mod camera;
mod color;
mod error;
mod handler;
mod heif;
mod limits;
mod placeholder;
mod render;
mod resize;

pub use error::RenderError;
pub use handler::ResizerHandler;
pub use render::{Encoded, Rendered, Renderer};
