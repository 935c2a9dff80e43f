//! The recognizer stage: tags each image's preview with ImageNet classes using an ONNX model run
//! by ONNX Runtime (loaded dynamically, see [`Classifier::load`]).
//!
//! [`Classifier`] is the model and its preprocessing, usable on its own, batching concurrent
//! callers' images into one model run on CPU or GPU; [`Taxonomy`] maps its classes to editor
//! categories; [`RecognizerHandler`] is the bus handler that turns `RenditionsReady` into
//! `TagsReady`.
//! [`Ocr`] reads the text in a picture (PP-OCR detection and recognition models).

mod batcher;
mod classifier;
mod error;
mod gate;
mod handler;
mod ocr;
pub mod preprocess;
mod provider;
mod runtime;
mod scores;
mod taxonomy;

pub use batcher::BatchStats;
pub use classifier::{Classifier, Recognition};
pub use error::RecognizerError;
pub use handler::{DEFAULT_MAX_PREVIEW_BYTES, RecognizerHandler};
pub use ocr::{BBox, Ocr, TextLine};
pub use runtime::ORT_DYLIB_PATH;
pub use taxonomy::Taxonomy;
