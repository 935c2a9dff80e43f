//! Configuration, layered: built-in defaults, then a TOML file, then `IMGPIPE_SECTION__KEY`
//! environment variables, then command-line flags (applied by the binary on the result).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How often and how patiently a stage retries.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A handler running longer than this is abandoned and retried.
    pub handler_timeout: Duration,
}

impl RetryPolicy {
    /// Exponential backoff: base, 2*base, 4*base ... capped at `max_delay`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address of the HTTP server (API, page, and the embedded S3 endpoint).
    pub listen: SocketAddr,
    /// Where embedded backends keep their files.
    pub data_dir: PathBuf,
    /// Base URL browsers use to reach `listen` (empty: `http://<listen>`).
    pub public_url: String,
    pub object_store: ObjectStoreConfig,
    pub bus: BusConfig,
    pub metadata: MetadataConfig,
    pub upload: UploadConfig,
    pub resizer: ResizerConfig,
    pub recognizer: RecognizerConfig,
    pub retry: RetryConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectStoreKind {
    /// S3 endpoint served by this process over `data_dir/objects`.
    Embedded,
    /// Any external S3-compatible endpoint.
    S3,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObjectStoreConfig {
    pub kind: ObjectStoreKind,
    /// For `s3`: the endpoint services use (empty with `embedded`: this process).
    pub endpoint: String,
    /// Endpoint put in presigned URLs; empty: same as `endpoint` (or `public_url` when embedded).
    pub public_endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    pub originals_bucket: String,
    pub renditions_bucket: String,
    /// With `embedded`: publish an `ObjectCreated` event for each upload. Off, the store behaves
    /// like one that cannot notify (AWS S3 without a bridge, Garage), and clients announce their
    /// uploads with `POST /api/uploads/{id}/complete`.
    pub notify: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusKind {
    /// Durable queue in `data_dir/bus.sqlite`.
    Embedded,
    /// RabbitMQ (quorum queues) at `bus.url`.
    Rabbitmq,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    pub kind: BusKind,
    /// AMQP URL for `rabbitmq`, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
    pub url: String,
    /// Prefix of every exchange and queue name, so several pipelines can share a vhost.
    pub prefix: String,
    /// Unacknowledged deliveries a consumer may hold.
    pub prefetch: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetadataKind {
    /// SQLite in `data_dir/metadata.sqlite`.
    Sqlite,
    /// PostgreSQL (or a Postgres-compatible database) at `metadata.url`.
    Postgres,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    pub kind: MetadataKind,
    /// Connection URL for `postgres`, e.g. `postgres://postgres@127.0.0.1:5432/imgpipe`.
    pub url: String,
    /// Schema holding the tables (created if missing), so tests and tenants can share a database.
    pub schema: String,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadConfig {
    pub max_bytes: u64,
    pub allowed_types: Vec<String>,
    /// Lifetime of a presigned PUT URL.
    pub url_ttl_secs: u64,
    /// If set, `POST /api/uploads` requires `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Upload requests (`POST /api/uploads` and `/complete`) per minute per client address,
    /// with bursts up to the same number; 0 disables the limit.
    pub rate_per_minute: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResizerConfig {
    /// Longest side of the thumbnail, px.
    pub thumb_size: u32,
    /// Longest side of the preview, px.
    pub preview_size: u32,
    /// Refuse images with more pixels than this (checked from the header, before decoding).
    pub max_pixels: u64,
    /// Refuse originals larger than this many bytes.
    pub max_bytes: u64,
    /// Encoding of the thumbnail and preview.
    pub format: RenditionFormat,
    /// Quality (1-100) of the renditions, JPEG or lossy WebP.
    pub jpeg_quality: u8,
    pub concurrency: usize,
    /// Keep the GPS position from EXIF on the document. Off by default: a photo's position is
    /// often its author's home, and the query API is public.
    pub keep_gps: bool,
}

/// How renditions are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RenditionFormat {
    /// Baseline JPEG, 4:2:0: every browser and tool reads it.
    Jpeg,
    /// Lossy WebP: about a quarter smaller at the same quality; every current browser.
    Webp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecognizerConfig {
    pub model: PathBuf,
    pub labels: PathBuf,
    /// libonnxruntime to load; `ORT_DYLIB_PATH` overrides it.
    pub onnxruntime: PathBuf,
    pub model_name: String,
    pub model_version: String,
    pub top_k: usize,
    /// ONNX Runtime threads inside one model run.
    pub intra_threads: usize,
    /// Model runs at once, each on its own session: `parallel_runs x intra_threads` threads in
    /// all. On a CPU, runs side by side use cores better than threads inside one run of a small
    /// model; on a GPU, use 1.
    pub parallel_runs: usize,
    pub concurrency: usize,
    /// Read text in pictures (PP-OCR). When true, the two OCR models must exist at start.
    pub ocr: bool,
    /// PP-OCR text detection model (ONNX).
    pub ocr_det_model: PathBuf,
    /// PP-OCR text recognition model (ONNX; its character list is in the model's metadata).
    pub ocr_rec_model: PathBuf,
    /// Text lines read with a lower confidence (0..1) are dropped.
    pub ocr_min_score: f32,
    /// Images per model run: the batcher runs when this many are queued ...
    pub batch_size: usize,
    /// ... or when the first queued image has waited this long for others still being prepared.
    pub batch_wait_ms: u64,
    /// `cpu`, `cuda` or `tensorrt`; a GPU provider that cannot start falls back to CPU, with a
    /// warning.
    pub execution_provider: ExecutionProvider,
    /// Labels scoring below this (0..1) are dropped, even within `top_k`.
    pub min_score: f32,
    /// Editor taxonomy (TOML) mapping model classes to categories; empty: the one built into
    /// the binary, `models/taxonomy.toml` (for ImageNet labels).
    pub taxonomy: PathBuf,
    /// Categories whose summed probability is below this (0..1) are dropped.
    pub category_min_score: f32,
}

/// Where the recognizer runs its model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionProvider {
    /// ONNX Runtime's own CPU kernels (MLAS).
    Cpu,
    /// NVIDIA CUDA (needs `onnxruntime-gpu`'s library and a GPU).
    Cuda,
    /// NVIDIA TensorRT, with CUDA for what TensorRT does not take.
    Tensorrt,
}

impl ExecutionProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionProvider::Cpu => "cpu",
            ExecutionProvider::Cuda => "cuda",
            ExecutionProvider::Tensorrt => "tensorrt",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    pub max_attempts: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    pub handler_timeout_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `tracing` filter directive, e.g. `info,imgpipe=debug`.
    pub filter: String,
    pub json: bool,
}

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
            access_key: "imgpipe".to_owned(),
            secret_key: "imgpipe-local-secret".to_owned(),
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
            token: None,
            rate_per_minute: 1200,
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
            model: PathBuf::from("models/efficientnet-lite0.onnx"),
            labels: PathBuf::from("models/efficientnet-lite0.labels.txt"),
            onnxruntime: PathBuf::from("models/libonnxruntime.so"),
            model_name: "efficientnet-lite0".to_owned(),
            model_version: "1".to_owned(),
            top_k: 5,
            intra_threads: 1,
            parallel_runs: 2,
            // Twice the batch: one batch is decoded while the previous one runs.
            concurrency: 16,
            ocr: true,
            ocr_det_model: PathBuf::from("models/ocr/PP-OCRv6_det_small.onnx"),
            ocr_rec_model: PathBuf::from("models/ocr/PP-OCRv6_rec_small.onnx"),
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
    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts.max(1),
            base_delay: Duration::from_millis(self.base_delay_ms),
            max_delay: Duration::from_millis(self.max_delay_ms),
            handler_timeout: Duration::from_secs(self.handler_timeout_secs.max(1)),
        }
    }
}

impl Config {
    /// Defaults, overlaid with `file` (if given) and then with `IMGPIPE_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut merged = toml::Value::try_from(Config::default())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            let overlay: toml::Value = toml::from_str(&text)
                .map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))?;
            merge(&mut merged, overlay);
        }
        for (name, value) in env {
            let Some(path) = name.strip_prefix("IMGPIPE_") else {
                continue;
            };
            let keys: Vec<String> = path.split("__").map(str::to_lowercase).collect();
            // A single word that is not a top-level setting is someone else's variable: the
            // config file's path (`IMGPIPE_CONFIG`), the tests' own, or what Kubernetes injects
            // for a Service named `imgpipe` (`IMGPIPE_PORT`, `IMGPIPE_SERVICE_HOST`). Anything
            // with a section (`__`) is ours, and a misspelt key there is refused.
            if keys.len() == 1 && merged.get(&keys[0]).is_none_or(toml::Value::is_table) {
                continue;
            }
            let value = match lookup(&merged, &keys) {
                // Strings stay strings: an all-digit password is not a number.
                Some(toml::Value::String(_)) | None => toml::Value::String(value),
                Some(_) => parse_scalar(&value),
            };
            merge(&mut merged, nest(&keys, value));
        }
        merged
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))
    }

    pub fn bus_path(&self) -> PathBuf {
        self.data_dir.join("bus.sqlite")
    }

    pub fn metadata_path(&self) -> PathBuf {
        self.data_dir.join("metadata.sqlite")
    }

    pub fn objects_dir(&self) -> PathBuf {
        self.data_dir.join("objects")
    }

    /// The URL browsers use to reach this process when it listens on `addr` (the port may have
    /// been chosen by the system): `public_url`, else `http://<addr>`.
    pub fn base_url(&self, addr: SocketAddr) -> String {
        if self.public_url.is_empty() {
            format!("http://{addr}")
        } else {
            self.public_url.trim_end_matches('/').to_owned()
        }
    }
}

fn merge(base: &mut toml::Value, overlay: toml::Value) {
    match (base, overlay) {
        (toml::Value::Table(base), toml::Value::Table(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// The value at `keys` in `value`, if any.
fn lookup<'a>(value: &'a toml::Value, keys: &[String]) -> Option<&'a toml::Value> {
    keys.iter().try_fold(value, |v, key| v.get(key))
}

fn nest(keys: &[String], value: toml::Value) -> toml::Value {
    keys.iter().rev().fold(value, |inner, key| {
        let mut table = toml::map::Map::new();
        table.insert(key.clone(), inner);
        toml::Value::Table(table)
    })
}

/// An environment value for a non-string setting, as TOML if it parses as a scalar or array
/// (`5`, `true`, `["a"]`), else as a plain string (which then fails with the key's name).
fn parse_scalar(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

#[cfg(test)]
mod tests {
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
            ("IMGPIPE_UPLOAD__TOKEN".to_owned(), "0123456789".to_owned()),
            ("IMGPIPE_LISTEN".to_owned(), "0.0.0.0:9000".to_owned()),
        ];
        let config = Config::load(Some(&file), env).expect("valid");
        assert_eq!(config.data_dir, PathBuf::from("/srv/x"));
        assert_eq!(config.resizer.thumb_size, 300);
        assert_eq!(config.resizer.jpeg_quality, 70);
        assert_eq!(config.resizer.preview_size, 1280);
        assert_eq!(config.object_store.access_key, "ak");
        assert_eq!(config.upload.token.as_deref(), Some("0123456789"));
        assert_eq!(config.listen.port(), 9000);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let env = [("IMGPIPE_RESIZER__THUMB_SIZ".to_owned(), "300".to_owned())];
        assert!(Config::load(None, env).is_err());
    }
}
