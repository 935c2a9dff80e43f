//! Built-in defaults: what `imgpipe up` runs with when nothing is configured.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::*;

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            public_url: String::new(),
            object_store: ObjectStoreConfig::default(),
            bus: BusConfig::default(),
            metadata: MetadataConfig::default(),
            upload: UploadConfig::default(),
            resizer: ResizerConfig::default(),
            recognizer: RecognizerConfig::default(),
            retry: RetryConfig::default(),
            log: LogConfig::default(),
            access: AccessConfig::default(),
            server: ServerConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 1024,
            header_timeout_secs: 10,
            request_timeout_secs: 60,
            body_idle_timeout_secs: 30,
            // Under Kubernetes' default termination grace of 30 s.
            shutdown_grace_secs: 20,
        }
    }
}

impl Default for ObjectStoreConfig {
    fn default() -> Self {
        ObjectStoreConfig {
            kind: ObjectStoreKind::Embedded,
            endpoint: String::new(),
            public_endpoint: String::new(),
            region: "us-east-1".to_owned(),
            // None built in: the embedded endpoint makes its own at first start (kept in
            // DATA_DIR); any other S3 needs them from the environment or a secret.
            access_key: String::new(),
            secret_key: String::new(),
            originals_bucket: "originals".to_owned(),
            renditions_bucket: "renditions".to_owned(),
            notify: true,
        }
    }
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            kind: BusKind::Embedded,
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
            prefix: "imgpipe".to_owned(),
            prefetch: 16,
        }
    }
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            kind: MetadataKind::Sqlite,
            url: "postgres://postgres@127.0.0.1:5432/postgres".to_owned(),
            schema: "imgpipe".to_owned(),
            max_connections: 8,
        }
    }
}

impl Default for UploadConfig {
    fn default() -> Self {
        UploadConfig {
            max_bytes: 50 * 1024 * 1024,
            allowed_types: [
                "image/jpeg",
                "image/png",
                "image/webp",
                "image/gif",
                "image/tiff",
                "image/bmp",
                "image/heic",
                "image/heif",
                "image/avif",
            ]
            .map(str::to_owned)
            .to_vec(),
            url_ttl_secs: 300,
            rate_per_minute: 1200,
            quota_images: 0,
            quota_bytes: 0,
            min_free_bytes: 1024 * 1024 * 1024,
        }
    }
}

impl Default for ResizerConfig {
    fn default() -> Self {
        ResizerConfig {
            thumb_size: 256,
            preview_size: 1280,
            max_pixels: 100_000_000,
            max_bytes: 64 * 1024 * 1024,
            decode_memory_mb: 1024,
            format: RenditionFormat::Jpeg,
            jpeg_quality: 85,
            concurrency: 2,
            keep_gps: false,
        }
    }
}

impl Default for RecognizerConfig {
    fn default() -> Self {
        RecognizerConfig {
            models_dir: PathBuf::new(),
            model: PathBuf::from("efficientnet-lite0.onnx"),
            labels: PathBuf::from("efficientnet-lite0.labels.txt"),
            onnxruntime: PathBuf::from("libonnxruntime.so"),
            model_name: "efficientnet-lite0".to_owned(),
            model_version: "1".to_owned(),
            top_k: 5,
            intra_threads: 1,
            parallel_runs: 2,
            // Twice the batch: one batch is decoded while the previous one runs.
            concurrency: 16,
            ocr: true,
            ocr_det_model: PathBuf::from("ocr/PP-OCRv6_det_small.onnx"),
            ocr_rec_model: PathBuf::from("ocr/PP-OCRv6_rec_small.onnx"),
            ocr_min_score: 0.5,
            batch_size: 8,
            batch_wait_ms: 5,
            execution_provider: ExecutionProvider::Cpu,
            min_score: 0.0,
            taxonomy: PathBuf::new(),
            category_min_score: 0.2,
        }
    }
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 5,
            base_delay_ms: 1000,
            max_delay_ms: 60_000,
            handler_timeout_secs: 120,
            transient_patience_secs: 1800,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            filter: "info".to_owned(),
            json: false,
        }
    }
}

impl RetryConfig {
    /// The policy these settings describe, as they are ([`Config::validate`] refused zero
    /// attempts, a zero timeout and a base delay over the maximum).
    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts,
            base_delay: Duration::from_millis(self.base_delay_ms),
            max_delay: Duration::from_millis(self.max_delay_ms),
            handler_timeout: Duration::from_secs(self.handler_timeout_secs),
            transient_patience: Duration::from_secs(self.transient_patience_secs),
        }
    }
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            enabled: true,
            insecure: false,
            rate_per_minute: 6000,
            cors_origins: Vec::new(),
            trusted_proxies: Vec::new(),
        }
    }
}
