//! Configuration, layered: built-in defaults, then a TOML file, then `IMGPIPE_SECTION__KEY`
//! environment variables, then command-line flags (applied by the binary on the result).
//!
//! [`Config::load`] checks the result once ([`Config::validate`]: ranges, zero values, settings
//! that contradict each other), so the crates take values as they are instead of clamping them,
//! and resolves the recognizer's model files against one models directory
//! ([`RecognizerConfig::resolve_paths`]).

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
    /// How long a message may keep failing for transient reasons (the database, the store or
    /// the broker unavailable) without spending attempts; past it, each failure counts.
    pub transient_patience: Duration,
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
    pub access: AccessConfig,
    pub server: ServerConfig,
}

/// The HTTP listener's own limits, against slow or too many clients, and how long a stop may take.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Connections served at once; more wait in the kernel's accept queue (file descriptors are
    /// finite: a few thousand idle connections must not starve the workers and databases).
    pub max_connections: usize,
    /// Time a client has to send a request's headers (slowloris).
    pub header_timeout_secs: u64,
    /// Time an API request may take to be answered (uploads to the embedded S3 endpoint have
    /// their own deadline: the presigned URL's expiry).
    pub request_timeout_secs: u64,
    /// Longest pause allowed between two pieces of a request body.
    pub body_idle_timeout_secs: u64,
    /// On stop: time in-flight messages get to finish before they are handed back to the queue
    /// (without spending an attempt), and then open requests to complete.
    pub shutdown_grace_secs: u64,
}

/// Who may call the API (see the README's Security section).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// Every API route needs a key (`Authorization: Bearer KEY`, or the page's sign-in cookie).
    /// Off, every caller acts as an admin of the tenant `default`: allowed on a loopback
    /// address, elsewhere only with `insecure`.
    pub enabled: bool,
    /// Serve a non-loopback address with access control off (`--insecure`).
    pub insecure: bool,
    /// Requests a minute per key on the query and key API, bursting to as many; 0 disables.
    /// (Upload requests have `upload.rate_per_minute`.) Routes without a key (the page's
    /// sign-in) are limited per client address at the same rate.
    pub rate_per_minute: u32,
    /// Origins of web apps allowed to call the API from a browser (CORS), e.g.
    /// `["https://desk.example.org"]`; empty: only the page served here.
    pub cors_origins: Vec<String>,
    /// Reverse proxies (the shipped gateway, an ingress) whose `X-Forwarded-For` names the
    /// client, for per-address limits; a request from anywhere else is its own client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
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
    /// Upload requests (`POST /api/uploads` and `/complete`) per minute per API key, with
    /// bursts up to the same number; 0 disables the limit.
    pub rate_per_minute: u32,
    /// Images one tenant may store; 0: no limit.
    pub quota_images: u64,
    /// Bytes of originals one tenant may store; 0: no limit.
    pub quota_bytes: u64,
    /// With the embedded object store: new uploads are refused while the disk holding
    /// `data_dir` has less free space than this, before the queue and database share its fate.
    pub min_free_bytes: u64,
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
    /// Memory, in MiB, that all of the process's concurrent decodes may hold together,
    /// estimated from each header before decoding. An image needing more than this alone is
    /// refused; others wait until enough is free, so a worker stays inside its memory limit.
    pub decode_memory_mb: u64,
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
    /// The directory holding the model files (what `scripts/setup.sh` makes in `models/`); the
    /// relative paths below are relative to it. Empty: `./models` if it holds the runtime
    /// library, else a `models/` folder beside the binary or in one of its parent directories
    /// (a binary in the repository's `target/release/`), else `./models`.
    pub models_dir: PathBuf,
    /// The classifier (ONNX); relative to `models_dir` unless absolute.
    pub model: PathBuf,
    /// Its class names, one per line; relative to `models_dir` unless absolute.
    pub labels: PathBuf,
    /// libonnxruntime to load, relative to `models_dir` unless absolute; `ORT_DYLIB_PATH`
    /// overrides it.
    pub onnxruntime: PathBuf,
    pub model_name: String,
    pub model_version: String,
    pub top_k: usize,
    /// ONNX Runtime threads inside one model run; 0: ONNX Runtime's default (one per core).
    pub intra_threads: usize,
    /// Model runs at once, each on its own session: `parallel_runs x intra_threads` threads in
    /// all. On a CPU, runs side by side use cores better than threads inside one run of a small
    /// model; on a GPU, use 1.
    pub parallel_runs: usize,
    pub concurrency: usize,
    /// Read text in pictures (PP-OCR). When true, the two OCR models must exist at start.
    pub ocr: bool,
    /// PP-OCR text detection model (ONNX); relative to `models_dir` unless absolute.
    pub ocr_det_model: PathBuf,
    /// PP-OCR text recognition model (ONNX; its character list is in the model's metadata);
    /// relative to `models_dir` unless absolute.
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
    pub transient_patience_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `tracing` filter directive, e.g. `info,imgpipe=debug`.
    pub filter: String,
    pub json: bool,
}

mod defaults;
mod layering;
mod models;
#[cfg(test)]
mod tests;
mod validate;

use layering::{lookup, merge, nest, parse_scalar};
pub use models::ModelsSearch;

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
        let mut config: Config = merged
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))?;
        config.validate()?;
        config
            .recognizer
            .resolve_paths(&ModelsSearch::from_process());
        Ok(config)
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
