//! The installation check run before a process that tags images touches anything else: every
//! file the recognizer will load exists, or the error names it and the setting to fix.

use std::path::Path;

use imgpipe_contract::config::RecognizerConfig;

use crate::error::RecognizerError;
use crate::runtime;

/// The name [`check_setup`] gives the library `ORT_DYLIB_PATH` names (so the message says to fix
/// the variable, not the config).
pub(crate) const ORT_DYLIB_PATH_LIBRARY: &str = "ONNX Runtime library named by ORT_DYLIB_PATH";

/// Checks that the files the recognizer loads exist: the ONNX Runtime library (the one
/// `ORT_DYLIB_PATH` names when set, else `recognizer.onnxruntime`), the model, its labels, the
/// taxonomy when one is configured, and the two OCR models when `recognizer.ocr` is on.
///
/// Cheap (no file is read): call it before creating anything, so a missing `scripts/setup.sh`
/// or a wrong `recognizer.models_dir` stops the process with nothing half made. The config's
/// relative paths are taken against the working directory, as the loaders take them; a config
/// from `Config::load` has them resolved against `recognizer.models_dir` already.
///
/// The error is [`RecognizerError::MissingFile`], naming the path, `bash scripts/setup.sh`, and
/// the setting (with its `IMGPIPE_*` variable) that chooses the file.
pub fn check_setup(config: &RecognizerConfig) -> Result<(), RecognizerError> {
    let from_env = std::env::var_os(runtime::ORT_DYLIB_PATH).is_some_and(|v| !v.is_empty());
    let library = runtime::library_path(&config.onnxruntime);
    let library_name = match from_env {
        true => ORT_DYLIB_PATH_LIBRARY,
        false => "ONNX Runtime library",
    };
    let taxonomy = Some(config.taxonomy.as_path()).filter(|p| !p.as_os_str().is_empty());
    let ocr = |path: &Path| config.ocr.then_some(path.to_owned());
    let files = [
        (library_name, Some(library)),
        ("model", Some(config.model.clone())),
        ("labels file", Some(config.labels.clone())),
        ("taxonomy file", taxonomy.map(Path::to_owned)),
        ("OCR detection model", ocr(&config.ocr_det_model)),
        ("OCR recognition model", ocr(&config.ocr_rec_model)),
    ];
    for (what, path) in files {
        if let Some(path) = path
            && !path.is_file()
        {
            return Err(RecognizerError::MissingFile { what, path });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// The repository's `models/`, as `scripts/setup.sh` leaves it.
    fn installed() -> RecognizerConfig {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
        RecognizerConfig {
            models_dir: models.clone(),
            model: models.join("efficientnet-lite0.onnx"),
            labels: models.join("efficientnet-lite0.labels.txt"),
            onnxruntime: models.join("libonnxruntime.so"),
            ocr_det_model: models.join("ocr/PP-OCRv6_det_small.onnx"),
            ocr_rec_model: models.join("ocr/PP-OCRv6_rec_small.onnx"),
            ..RecognizerConfig::default()
        }
    }

    fn ort_dylib_path_set() -> bool {
        std::env::var_os(runtime::ORT_DYLIB_PATH).is_some_and(|v| !v.is_empty())
    }

    fn missing(config: &RecognizerConfig) -> String {
        let err = check_setup(config).expect_err("a file is missing");
        assert!(err.is_setup(), "{err}");
        assert!(
            matches!(err, RecognizerError::MissingFile { .. }),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("bash scripts/setup.sh"), "{message}");
        message
    }

    #[test]
    fn an_installed_recognizer_passes() {
        check_setup(&installed()).unwrap_or_else(|e| panic!("{e}; run `bash scripts/setup.sh`"));
    }

    #[test]
    fn a_missing_runtime_library_names_the_settings() {
        if ort_dylib_path_set() {
            // The variable overrides the config: the bad config path must not matter.
            let config = RecognizerConfig {
                onnxruntime: PathBuf::from("/nonexistent/libonnxruntime.so"),
                ..installed()
            };
            check_setup(&config).expect("ORT_DYLIB_PATH overrides recognizer.onnxruntime");
            return;
        }
        let config = RecognizerConfig {
            onnxruntime: PathBuf::from("/nonexistent/libonnxruntime.so"),
            ..installed()
        };
        let message = missing(&config);
        for part in [
            "ONNX Runtime library not found at /nonexistent/libonnxruntime.so",
            "recognizer.models_dir (IMGPIPE_RECOGNIZER__MODELS_DIR)",
            "recognizer.onnxruntime (IMGPIPE_RECOGNIZER__ONNXRUNTIME)",
            "ORT_DYLIB_PATH",
        ] {
            assert!(message.contains(part), "{part:?} not in {message}");
        }
    }

    #[test]
    fn a_missing_model_or_labels_file_names_its_key() {
        let cases = [
            (
                RecognizerConfig {
                    model: PathBuf::from("/nonexistent/model.onnx"),
                    ..installed()
                },
                "recognizer.model (IMGPIPE_RECOGNIZER__MODEL)",
            ),
            (
                RecognizerConfig {
                    labels: PathBuf::from("/nonexistent/labels.txt"),
                    ..installed()
                },
                "recognizer.labels (IMGPIPE_RECOGNIZER__LABELS)",
            ),
            (
                RecognizerConfig {
                    ocr_rec_model: PathBuf::from("/nonexistent/rec.onnx"),
                    ..installed()
                },
                "recognizer.ocr_rec_model (IMGPIPE_RECOGNIZER__OCR_REC_MODEL)",
            ),
            (
                RecognizerConfig {
                    taxonomy: PathBuf::from("/nonexistent/taxonomy.toml"),
                    ..installed()
                },
                "recognizer.taxonomy (IMGPIPE_RECOGNIZER__TAXONOMY)",
            ),
        ];
        for (config, key) in cases {
            let message = missing(&config);
            assert!(message.contains(key), "{key:?} not in {message}");
            assert!(message.contains("/nonexistent/"), "{message}");
        }
    }

    #[test]
    fn ocr_models_are_only_needed_with_ocr_on() {
        let config = RecognizerConfig {
            ocr: false,
            ocr_det_model: PathBuf::from("/nonexistent/det.onnx"),
            ocr_rec_model: PathBuf::from("/nonexistent/rec.onnx"),
            ..installed()
        };
        check_setup(&config).expect("OCR off");
        let message = missing(&RecognizerConfig {
            ocr: true,
            ..config
        });
        assert!(
            message.contains("OCR detection model not found at /nonexistent/det.onnx"),
            "{message}"
        );
    }
}
