//! Shared by the integration tests: the real model, runtime and photos from the repository. A
//! missing file fails the test with the fix, never skips it.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use imgpipe_contract::config::RecognizerConfig;
use imgpipe_recognizer::{Classifier, Recognition, RecognizerError};

/// The repository root (the workspace holding this crate).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crate lives in the workspace")
        .to_owned()
}

/// The default recognizer config with the repository's `models/` files as absolute paths.
pub fn config() -> RecognizerConfig {
    let models = repo_root().join("models");
    RecognizerConfig {
        model: models.join("efficientnet-lite0.onnx"),
        labels: models.join("efficientnet-lite0.labels.txt"),
        onnxruntime: models.join("libonnxruntime.so"),
        ocr_det_model: models.join("ocr/PP-OCRv6_det_small.onnx"),
        ocr_rec_model: models.join("ocr/PP-OCRv6_rec_small.onnx"),
        ..RecognizerConfig::default()
    }
}

/// One classifier per test binary: loading takes a few hundred milliseconds.
pub fn classifier() -> Arc<Classifier> {
    static CLASSIFIER: OnceLock<Arc<Classifier>> = OnceLock::new();
    CLASSIFIER
        .get_or_init(|| match Classifier::load(&config()) {
            Ok(classifier) => Arc::new(classifier),
            Err(e) => panic!("cannot load the classifier ({e}); run `bash scripts/setup.sh`"),
        })
        .clone()
}

/// What `imgpipe tag` and the benchmark do with a file's bytes: the classifier's one path, the
/// picture decoded as small as the model allows.
pub fn recognize(
    classifier: &Classifier,
    bytes: &[u8],
    top_k: usize,
) -> Result<Recognition, RecognizerError> {
    classifier
        .recognize_bytes(bytes, 0, top_k)
        .map(|recognized| recognized.recognition)
}

/// Bytes of `tests/photos/<name>`.
pub fn photo(name: &str) -> Vec<u8> {
    let path = repo_root().join("tests/photos").join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "test photo {} unreadable ({e}); run `bash scripts/setup.sh`",
            path.display()
        )
    })
}

/// `tests/photos/<name>` decoded (EXIF orientation applied), as the handler would see it.
pub fn decoded(name: &str) -> image::DynamicImage {
    imgpipe_recognizer::preprocess::decode(&photo(name)).expect("test photo decodes")
}

/// The labels of a top-k list, for readable assertions.
pub fn labels(tags: &[imgpipe_contract::document::Tag]) -> Vec<&str> {
    tags.iter().map(|t| t.label.as_str()).collect()
}

pub const CAT_CLASSES: [&str; 5] = [
    "tabby",
    "tiger cat",
    "Egyptian cat",
    "Persian cat",
    "Siamese cat",
];
