//! What can go wrong in the recognizer, split so callers can tell a broken installation (fix the
//! setup, retrying will not help until then) from a bad image (dead-letter it).

use std::path::PathBuf;

/// Hint appended to every setup error, so the message says what to do.
const SETUP_HINT: &str = "run `bash scripts/setup.sh` from the repository root";

#[derive(Debug, thiserror::Error)]
pub enum RecognizerError {
    /// A file the classifier needs (ONNX Runtime library, model, labels) does not exist.
    #[error("{what} not found at {}: {SETUP_HINT}", path.display())]
    MissingFile { what: &'static str, path: PathBuf },

    /// The ONNX Runtime library exists but could not be loaded or initialised.
    #[error("cannot load ONNX Runtime from {}: {reason} ({SETUP_HINT}, or point ORT_DYLIB_PATH at libonnxruntime >= 1.17)", path.display())]
    Runtime { path: PathBuf, reason: String },

    /// The model file exists but ONNX Runtime refused it, or it is not the classifier we expect.
    #[error("cannot load model {}: {reason} ({SETUP_HINT})", path.display())]
    Model { path: PathBuf, reason: String },

    /// The labels file is unreadable or does not match the model's classes.
    #[error("bad labels file {}: {reason} ({SETUP_HINT})", path.display())]
    Labels { path: PathBuf, reason: String },

    /// The taxonomy file is unreadable or names classes the model does not have.
    #[error("bad taxonomy {}: {reason}", path.display())]
    Taxonomy { path: PathBuf, reason: String },

    /// The bytes are not an image we can decode (corrupt, truncated, unsupported format).
    #[error("cannot decode image: {0}")]
    Decode(String),

    /// The image decoded but cannot be classified (e.g. zero width or height).
    #[error("unusable image: {0}")]
    InvalidImage(String),

    /// ONNX Runtime failed while running the model.
    #[error("inference failed: {0}")]
    Inference(String),
}

impl RecognizerError {
    /// The installation is incomplete or broken: nothing will work until it is fixed.
    pub fn is_setup(&self) -> bool {
        matches!(
            self,
            RecognizerError::MissingFile { .. }
                | RecognizerError::Runtime { .. }
                | RecognizerError::Model { .. }
                | RecognizerError::Labels { .. }
                | RecognizerError::Taxonomy { .. }
        )
    }

    /// The input itself is at fault: retrying the same bytes gives the same error.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            RecognizerError::Decode(_) | RecognizerError::InvalidImage(_)
        )
    }
}
