//! A broken installation gives a clear error naming the file and the fix, never a panic.

mod common;

use std::path::PathBuf;

use common::config;
use imgpipe_recognizer::{Classifier, ORT_DYLIB_PATH, RecognizerError};

fn load_error(config: &imgpipe_contract::config::RecognizerConfig) -> RecognizerError {
    match Classifier::load(config) {
        Ok(_) => panic!("loading {config:?} should fail"),
        Err(e) => e,
    }
}

fn assert_names_path_and_fix(err: &RecognizerError, path: &std::path::Path) {
    let message = err.to_string();
    assert!(err.is_setup(), "{message}");
    assert!(
        message.contains(&path.display().to_string()),
        "{message} does not name {}",
        path.display()
    );
    assert!(
        message.contains("bash scripts/setup.sh"),
        "{message} does not say how to fix it"
    );
}

#[test]
fn missing_runtime_library_is_reported() {
    let missing = PathBuf::from("/nonexistent/imgpipe/libonnxruntime.so");
    let config = imgpipe_contract::config::RecognizerConfig {
        onnxruntime: missing.clone(),
        ..config()
    };
    match std::env::var_os(ORT_DYLIB_PATH) {
        // The variable overrides the config, so the bad config path must not matter.
        Some(path) if !path.is_empty() => {
            Classifier::load(&config).expect("ORT_DYLIB_PATH overrides the config");
        }
        _ => {
            let err = load_error(&config);
            assert!(
                matches!(err, RecognizerError::MissingFile { .. }),
                "{err:?}"
            );
            assert_names_path_and_fix(&err, &missing);
        }
    }
}

#[test]
fn missing_runtime_is_reported_even_after_a_successful_load() {
    // Loading once first puts the library in the process; a later bad path must still fail.
    common::classifier();
    missing_runtime_library_is_reported();
}

#[test]
fn a_second_classifier_loads_fine() {
    let first = common::classifier();
    let second = Classifier::load(&config()).expect("second load in the same process");
    let image = common::photo("coffee.jpg");
    assert_eq!(
        first
            .recognize_bytes(&image, 0, 3)
            .expect("first")
            .recognition,
        second
            .recognize_bytes(&image, 0, 3)
            .expect("second")
            .recognition
    );
}

#[test]
fn missing_model_is_reported() {
    let missing = PathBuf::from("/nonexistent/imgpipe/model.onnx");
    let err = load_error(&imgpipe_contract::config::RecognizerConfig {
        model: missing.clone(),
        ..config()
    });
    assert_names_path_and_fix(&err, &missing);
}

#[test]
fn missing_labels_are_reported() {
    let missing = PathBuf::from("/nonexistent/imgpipe/labels.txt");
    let err = load_error(&imgpipe_contract::config::RecognizerConfig {
        labels: missing.clone(),
        ..config()
    });
    assert_names_path_and_fix(&err, &missing);
}

#[test]
fn labels_that_do_not_match_the_model_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let labels = dir.path().join("labels.txt");
    std::fs::write(&labels, "cat\ndog\n").expect("write labels");
    let err = load_error(&imgpipe_contract::config::RecognizerConfig {
        labels: labels.clone(),
        ..config()
    });
    assert!(matches!(err, RecognizerError::Labels { .. }), "{err:?}");
    assert_names_path_and_fix(&err, &labels);
}

#[test]
fn a_file_that_is_not_a_model_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = dir.path().join("model.onnx");
    std::fs::write(&model, "not a model").expect("write model");
    let err = load_error(&imgpipe_contract::config::RecognizerConfig {
        model: model.clone(),
        ..config()
    });
    assert!(matches!(err, RecognizerError::Model { .. }), "{err:?}");
    assert_names_path_and_fix(&err, &model);
}

#[test]
fn a_missing_taxonomy_is_reported() {
    let missing = PathBuf::from("/nonexistent/imgpipe/taxonomy.toml");
    let err = load_error(&imgpipe_contract::config::RecognizerConfig {
        taxonomy: missing.clone(),
        ..config()
    });
    assert_names_path_and_fix(&err, &missing);
}

#[test]
fn a_taxonomy_naming_classes_the_model_lacks_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let taxonomy = dir.path().join("taxonomy.toml");
    std::fs::write(
        &taxonomy,
        "[[category]]\nname = \"animal\"\nclasses = [\"unicorn\"]\n",
    )
    .expect("write taxonomy");
    let err = load_error(&imgpipe_contract::config::RecognizerConfig {
        taxonomy: taxonomy.clone(),
        ..config()
    });
    assert!(matches!(err, RecognizerError::Taxonomy { .. }), "{err:?}");
    assert!(err.is_setup());
    let message = err.to_string();
    assert!(message.contains("unicorn"), "{message}");
    assert!(
        message.contains(&taxonomy.display().to_string()),
        "{message}"
    );
}
