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
mod setup;
mod taxonomy;

pub use batcher::BatchStats;
pub use classifier::{Classifier, Recognition, Recognized};
pub use error::RecognizerError;
pub use handler::{DEFAULT_MAX_PREVIEW_BYTES, RecognizerHandler};
pub use ocr::{BBox, Ocr, TextLine};
pub use runtime::ORT_DYLIB_PATH;
pub use setup::check_setup;
pub use taxonomy::Taxonomy;

use std::sync::Arc;

use imgpipe_contract::bus::Subscription;
use imgpipe_contract::config::Config;
use imgpipe_contract::event::Topic;
use imgpipe_runtime::{Deps, Part};

/// The queue this stage consumes and the topics bound to it.
pub fn subscription() -> Subscription {
    Subscription::new("recognizer", &[Topic::RENDITIONS_READY])
}

/// The recognizer as a part of a process: loads the model (and the OCR models when
/// `recognizer.ocr` is on) before the process takes any work, since a missing model is a set-up
/// error, not a per-image failure; then one worker, no routes.
pub async fn part(config: &Config, deps: &Deps) -> Result<Part, RecognizerError> {
    let rc = config.recognizer.clone();
    let (classifier, ocr) = tokio::task::spawn_blocking(move || {
        Ok::<_, RecognizerError>((Classifier::load(&rc)?, Ocr::from_config(&rc)?))
    })
    .await
    .map_err(|e| RecognizerError::Runtime {
        path: config.recognizer.onnxruntime.clone(),
        reason: format!("loading crashed: {e}"),
    })??;
    let handler = RecognizerHandler::new(
        Arc::new(classifier),
        deps.store.clone(),
        deps.bus.clone(),
        config.recognizer.top_k,
    )
    .with_ocr(ocr.map(Arc::new));
    Ok(Part::default().with_worker(
        subscription(),
        Arc::new(handler),
        config.recognizer.concurrency,
    ))
}
