//! Layering, validation and model path resolution.

use super::*;

#[test]
fn layers_file_then_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("imgpipe.toml");
    std::fs::write(
        &file,
        "data_dir = \"/srv/x\"\n[resizer]\nthumb_size = 200\njpeg_quality = 70\n",
    )
    .expect("write");
    let env = [
        ("IMGPIPE_RESIZER__THUMB_SIZE".to_owned(), "300".to_owned()),
        (
            "IMGPIPE_OBJECT_STORE__ACCESS_KEY".to_owned(),
            "ak".to_owned(),
        ),
        ("PATH".to_owned(), "/bin".to_owned()),
        // Names the file itself; must not be read as a setting.
        ("IMGPIPE_CONFIG".to_owned(), "/etc/imgpipe.toml".to_owned()),
        // Kubernetes service links for a Service named `imgpipe`.
        ("IMGPIPE_PORT".to_owned(), "tcp://10.0.0.1:8080".to_owned()),
        ("IMGPIPE_SERVICE_HOST".to_owned(), "10.0.0.1".to_owned()),
        // All digits, yet a string setting: stays a string.
        (
            "IMGPIPE_OBJECT_STORE__SECRET_KEY".to_owned(),
            "0123456789".to_owned(),
        ),
        ("IMGPIPE_LISTEN".to_owned(), "0.0.0.0:9000".to_owned()),
    ];
    let config = Config::load(Some(&file), env).expect("valid");
    assert_eq!(config.data_dir, PathBuf::from("/srv/x"));
    assert_eq!(config.resizer.thumb_size, 300);
    assert_eq!(config.resizer.jpeg_quality, 70);
    assert_eq!(config.resizer.preview_size, 1280);
    assert_eq!(config.object_store.access_key, "ak");
    assert_eq!(config.object_store.secret_key, "0123456789");
    assert_eq!(config.listen.port(), 9000);
}

#[test]
fn decode_memory_budget_defaults_to_a_gibibyte_and_is_set_from_the_environment() {
    assert_eq!(Config::default().resizer.decode_memory_mb, 1024);
    let env = [(
        "IMGPIPE_RESIZER__DECODE_MEMORY_MB".to_owned(),
        "64".to_owned(),
    )];
    let config = Config::load(None, env).expect("64 MiB is the smallest budget allowed");
    assert_eq!(config.resizer.decode_memory_mb, 64);
}

#[test]
fn unknown_keys_are_refused() {
    let env = [("IMGPIPE_RESIZER__THUMB_SIZ".to_owned(), "300".to_owned())];
    assert!(Config::load(None, env).is_err());
}

#[test]
fn defaults_are_valid() {
    Config::default().validate().expect("defaults are valid");
    Config::load(None, std::iter::empty()).expect("defaults load");
}

fn invalid_message(config: &Config) -> String {
    match config.validate() {
        Ok(()) => panic!("{config:?} should be refused"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_zero_value_is_refused_at_load_naming_the_key() {
    let env = [("IMGPIPE_RESIZER__CONCURRENCY".to_owned(), "0".to_owned())];
    let err = Config::load(None, env).expect_err("zero concurrency");
    assert!(matches!(err, ConfigError::Invalid(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("resizer.concurrency must be at least 1"),
        "{message}"
    );
}

#[test]
fn each_bad_value_is_refused_naming_its_key() {
    type Break = fn(&mut Config);
    let cases: &[(&str, Break)] = &[
        ("resizer.concurrency", |c| c.resizer.concurrency = 0),
        ("resizer.thumb_size", |c| c.resizer.thumb_size = 0),
        ("resizer.preview_size", |c| {
            c.resizer.thumb_size = 0;
            c.resizer.preview_size = 0;
        }),
        (
            "resizer.thumb_size (300) must not exceed resizer.preview_size (200)",
            |c| {
                c.resizer.thumb_size = 300;
                c.resizer.preview_size = 200;
            },
        ),
        ("resizer.jpeg_quality", |c| c.resizer.jpeg_quality = 0),
        ("resizer.jpeg_quality", |c| c.resizer.jpeg_quality = 101),
        ("resizer.max_pixels", |c| c.resizer.max_pixels = 0),
        ("resizer.max_bytes", |c| {
            c.resizer.max_bytes = 0;
            c.upload.max_bytes = 0;
        }),
        (
            "resizer.decode_memory_mb must be at least 64 (is 63)",
            |c| c.resizer.decode_memory_mb = 63,
        ),
        ("recognizer.concurrency", |c| c.recognizer.concurrency = 0),
        ("recognizer.parallel_runs", |c| {
            c.recognizer.parallel_runs = 0
        }),
        ("recognizer.batch_size", |c| c.recognizer.batch_size = 0),
        ("recognizer.top_k", |c| c.recognizer.top_k = 0),
        ("recognizer.min_score", |c| c.recognizer.min_score = -0.1),
        ("recognizer.ocr_min_score", |c| {
            c.recognizer.ocr_min_score = 1.5
        }),
        ("recognizer.category_min_score", |c| {
            c.recognizer.category_min_score = f32::NAN;
        }),
        ("recognizer.model", |c| c.recognizer.model = PathBuf::new()),
        ("recognizer.labels", |c| {
            c.recognizer.labels = PathBuf::new()
        }),
        ("recognizer.ocr_det_model", |c| {
            c.recognizer.ocr_det_model = PathBuf::new();
        }),
        ("retry.max_attempts", |c| c.retry.max_attempts = 0),
        ("retry.handler_timeout_secs", |c| {
            c.retry.handler_timeout_secs = 0;
        }),
        (
            "retry.base_delay_ms (2000) must not exceed retry.max_delay_ms (1000)",
            |c| {
                c.retry.base_delay_ms = 2000;
                c.retry.max_delay_ms = 1000;
            },
        ),
        ("bus.prefetch", |c| c.bus.prefetch = 0),
        ("bus.prefix", |c| c.bus.prefix = String::new()),
        ("bus.url must be set when bus.kind is \"rabbitmq\"", |c| {
            c.bus.kind = BusKind::Rabbitmq;
            c.bus.url = String::new();
        }),
        ("bus.url must start with amqp:// or amqps://", |c| {
            c.bus.kind = BusKind::Rabbitmq;
            c.bus.url = "localhost:5672".to_owned();
        }),
        (
            "metadata.url must be set when metadata.kind is \"postgres\"",
            |c| {
                c.metadata.kind = MetadataKind::Postgres;
                c.metadata.url = String::new();
            },
        ),
        ("metadata.max_connections", |c| {
            c.metadata.max_connections = 0
        }),
        ("metadata.schema", |c| c.metadata.schema = String::new()),
        (
            "object_store.endpoint must be set when object_store.kind is \"s3\"",
            |c| {
                c.object_store.kind = ObjectStoreKind::S3;
            },
        ),
        (
            "object_store.public_endpoint must start with http:// or https://",
            |c| {
                c.object_store.public_endpoint = "s3.example.com".to_owned();
            },
        ),
        (
            "object_store.originals_bucket and object_store.renditions_bucket must differ",
            |c| {
                c.object_store.renditions_bucket = c.object_store.originals_bucket.clone();
            },
        ),
        ("public_url must start with http:// or https://", |c| {
            c.public_url = "imgpipe.example.com".to_owned();
        }),
        ("upload.max_bytes must be at least 1", |c| {
            c.upload.max_bytes = 0
        }),
        ("upload.max_bytes", |c| {
            c.upload.max_bytes = c.resizer.max_bytes + 1
        }),
        ("upload.url_ttl_secs must be at least 1", |c| {
            c.upload.url_ttl_secs = 0
        }),
        ("upload.url_ttl_secs must be at most", |c| {
            c.upload.url_ttl_secs = 8 * 24 * 3600;
        }),
        ("upload.allowed_types", |c| c.upload.allowed_types.clear()),
    ];
    for (key, break_it) in cases {
        let mut config = Config::default();
        break_it(&mut config);
        let message = invalid_message(&config);
        assert!(message.contains(key), "{key}: {message}");
    }
}

#[test]
fn settings_that_only_matter_elsewhere_are_not_refused() {
    let mut config = Config::default();
    // OCR off: its model paths are not used.
    config.recognizer.ocr = false;
    config.recognizer.ocr_det_model = PathBuf::new();
    // Embedded bus and SQLite: their URLs are not used.
    config.bus.url = String::new();
    config.metadata.url = "not a url".to_owned();
    // 0 disables the upload rate limit; no wait between attempts is allowed; 0 inference
    // threads is ONNX Runtime's default.
    config.upload.rate_per_minute = 0;
    config.recognizer.intra_threads = 0;
    // Made at start by a process serving the embedded S3 endpoint.
    config.object_store.access_key = String::new();
    config.object_store.secret_key = String::new();
    config.retry.base_delay_ms = 0;
    config.resizer.thumb_size = config.resizer.preview_size;
    config.validate().expect("valid");
}

#[test]
fn every_problem_is_reported_and_urls_are_not_repeated() {
    let mut config = Config::default();
    config.resizer.concurrency = 0;
    config.recognizer.batch_size = 0;
    config.bus.kind = BusKind::Rabbitmq;
    config.bus.url = "http://user:hunter2@broker".to_owned();
    let message = invalid_message(&config);
    for key in ["resizer.concurrency", "recognizer.batch_size", "bus.url"] {
        assert!(message.contains(key), "{key}: {message}");
    }
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn the_retry_policy_is_the_settings_as_they_are() {
    let retry = RetryConfig {
        max_attempts: 3,
        base_delay_ms: 0,
        max_delay_ms: 10,
        handler_timeout_secs: 7,
        transient_patience_secs: 60,
    };
    let policy = retry.policy();
    assert_eq!(policy.max_attempts, 3);
    assert_eq!(policy.base_delay, Duration::ZERO);
    assert_eq!(policy.max_delay, Duration::from_millis(10));
    assert_eq!(policy.handler_timeout, Duration::from_secs(7));
    assert_eq!(policy.transient_patience, Duration::from_secs(60));
}

/// `dir/models` holding a (fake) runtime library.
fn models_in(dir: &Path) -> PathBuf {
    let models = dir.join("models");
    std::fs::create_dir_all(&models).expect("models dir");
    std::fs::write(models.join("libonnxruntime.so"), "").expect("library");
    models
}

fn resolved(search: &ModelsSearch) -> RecognizerConfig {
    let mut config = RecognizerConfig::default();
    config.resolve_paths(search);
    config
}

#[test]
fn model_paths_are_relative_to_models_dir_and_absolute_ones_stay() {
    let search = ModelsSearch {
        current_dir: PathBuf::from("/work"),
        executable: None,
    };
    let mut config = RecognizerConfig {
        models_dir: PathBuf::from("/opt/imgpipe/models"),
        labels: PathBuf::from("/elsewhere/labels.txt"),
        ..RecognizerConfig::default()
    };
    config.resolve_paths(&search);
    let models = Path::new("/opt/imgpipe/models");
    assert_eq!(config.models_dir, models);
    assert_eq!(config.model, models.join("efficientnet-lite0.onnx"));
    assert_eq!(config.labels, Path::new("/elsewhere/labels.txt"));
    assert_eq!(config.onnxruntime, models.join("libonnxruntime.so"));
    assert_eq!(
        config.ocr_det_model,
        models.join("ocr/PP-OCRv6_det_small.onnx")
    );
    assert_eq!(
        config.ocr_rec_model,
        models.join("ocr/PP-OCRv6_rec_small.onnx")
    );
    // The taxonomy is the user's own file, relative to the working directory.
    assert_eq!(config.taxonomy, PathBuf::new());

    let again = config.clone();
    config.resolve_paths(&search);
    assert_eq!(config.model, again.model, "resolving twice changes nothing");
}

#[test]
fn a_relative_models_dir_is_relative_to_the_working_directory() {
    let search = ModelsSearch {
        current_dir: PathBuf::from("/work"),
        executable: None,
    };
    let mut config = RecognizerConfig {
        models_dir: PathBuf::from("./my-models"),
        ..RecognizerConfig::default()
    };
    config.resolve_paths(&search);
    assert_eq!(config.models_dir, Path::new("/work/my-models"));
    assert_eq!(
        config.model,
        Path::new("/work/my-models/efficientnet-lite0.onnx")
    );
}

#[test]
fn models_in_the_working_directory_come_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cwd = dir.path().join("here");
    let local = models_in(&cwd);
    let repo = dir.path().join("repo");
    models_in(&repo);
    let search = ModelsSearch {
        current_dir: cwd,
        executable: Some(repo.join("target/release/imgpipe")),
    };
    let config = resolved(&search);
    assert_eq!(config.models_dir, local);
    assert_eq!(config.onnxruntime, local.join("libonnxruntime.so"));
}

#[test]
fn else_models_are_found_above_the_binary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("repo");
    let models = models_in(&repo);
    // A `models/` without the runtime library in the working directory does not count.
    let cwd = dir.path().join("elsewhere");
    std::fs::create_dir_all(cwd.join("models")).expect("empty models dir");
    let search = ModelsSearch {
        current_dir: cwd,
        executable: Some(repo.join("target/release/imgpipe")),
    };
    let config = resolved(&search);
    assert_eq!(config.models_dir, models);
    assert_eq!(config.model, models.join("efficientnet-lite0.onnx"));
}

#[test]
fn without_models_anywhere_the_working_directory_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let search = ModelsSearch {
        current_dir: dir.path().join("elsewhere"),
        executable: Some(dir.path().join("bin/imgpipe")),
    };
    let config = resolved(&search);
    assert_eq!(config.models_dir, dir.path().join("elsewhere/models"));
    assert_eq!(
        config.onnxruntime,
        dir.path().join("elsewhere/models/libonnxruntime.so")
    );
}
