//! What can go wrong in the recognizer, split so callers can tell a broken installation (fix the
//! setup, retrying will not help until then) from a bad image (dead-letter it).

use std::path::PathBuf;

use crate::runtime::ORT_DYLIB_PATH;

/// Hint appended to every setup error, so the message says what to do.
const SETUP_HINT: &str = "run `bash scripts/setup.sh` from the repository root";

#[derive(Debug, thiserror::Error)]
pub enum RecognizerError {
    /// A file the classifier needs (ONNX Runtime library, model, labels) does not exist. The
    /// message names the setting (and its environment variable) that chooses the file.
    #[error("{what} not found at {}: {SETUP_HINT}, {}", path.display(), missing_file_fix(what))]
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

/// What to set instead of running set-up, for the file `what` names (the loaders' and
/// [`crate::check_setup`]'s names for them).
fn missing_file_fix(what: &str) -> String {
    let key = match what {
        "ONNX Runtime library" => "onnxruntime",
        "model" => "model",
        "labels file" => "labels",
        "OCR detection model" => "ocr_det_model",
        "OCR recognition model" => "ocr_rec_model",
        "taxonomy file" => {
            return "or set recognizer.taxonomy (IMGPIPE_RECOGNIZER__TAXONOMY) to an existing \
                    file, or to nothing for the built-in one"
                .to_owned();
        }
        crate::setup::ORT_DYLIB_PATH_LIBRARY => {
            return format!(
                "or point {ORT_DYLIB_PATH} at libonnxruntime, or unset it to use \
                 recognizer.models_dir (IMGPIPE_RECOGNIZER__MODELS_DIR) or recognizer.onnxruntime"
            );
        }
        _ => return "or set recognizer.models_dir (IMGPIPE_RECOGNIZER__MODELS_DIR)".to_owned(),
    };
    let env = key.to_uppercase();
    let runtime = match key {
        "onnxruntime" => format!("; {ORT_DYLIB_PATH}, when set, overrides both"),
        _ => String::new(),
    };
    format!(
        "or set recognizer.models_dir (IMGPIPE_RECOGNIZER__MODELS_DIR) or recognizer.{key} \
         (IMGPIPE_RECOGNIZER__{env}){runtime}"
    )
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
