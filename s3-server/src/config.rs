use std::path::PathBuf;
use std::time::Duration;

use crate::S3ServerError;

/// How long an upload body may take when no presigned URL's expiry ends it sooner: the
/// services' own uploads, which are small and local, never come near it.
pub const DEFAULT_MAX_BODY_DURATION: Duration = Duration::from_secs(15 * 60);
/// How long an upload body may stop arriving before the upload fails.
pub const DEFAULT_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of the embedded S3 endpoint.
#[derive(Debug, Clone)]
pub struct EmbeddedS3Config {
    /// Directory holding the objects (one sub-directory per bucket); created if missing.
    pub root: PathBuf,
    /// The only access key accepted (SigV4, header or presigned query string).
    pub access_key: String,
    pub secret_key: String,
    /// Region clients sign for and events report, e.g. `us-east-1`.
    pub region: String,
    /// Buckets created (as directories) at start if missing.
    pub buckets: Vec<String>,
    /// Buckets whose created objects are announced on the bus.
    pub notify_buckets: Vec<String>,
    /// Largest object accepted; larger uploads are refused with `EntityTooLarge`.
    pub max_object_bytes: u64,
    /// Longest time an upload body may take; a presigned upload must also be complete by its
    /// URL's expiry. Past it the upload fails with `RequestTimeout` and nothing is stored.
    pub max_body_duration: Duration,
    /// Longest pause between two pieces of an upload body before it fails with `RequestTimeout`.
    pub body_idle_timeout: Duration,
}

impl EmbeddedS3Config {
    /// Checks what would otherwise only fail at the first request.
    pub(crate) fn validate(&self) -> Result<(), S3ServerError> {
        let invalid = |msg: String| Err(S3ServerError::InvalidConfig(msg));
        if self.access_key.is_empty() || self.secret_key.is_empty() {
            return invalid("access_key and secret_key must not be empty".to_owned());
        }
        if self.region.is_empty() {
            return invalid("region must not be empty".to_owned());
        }
        if self.max_object_bytes == 0 {
            return invalid("max_object_bytes must be positive".to_owned());
        }
        if self.max_body_duration.is_zero() || self.body_idle_timeout.is_zero() {
            return invalid("max_body_duration and body_idle_timeout must be positive".to_owned());
        }
        for name in self.buckets.iter().chain(&self.notify_buckets) {
            if !s3s::path::check_bucket_name(name) {
                return invalid(format!("{name:?} is not a valid S3 bucket name"));
            }
        }
        Ok(())
    }

    /// Creates the root and bucket directories. Runs once at start, so blocking is fine.
    pub(crate) fn create_dirs(&self) -> Result<(), S3ServerError> {
        let create = |path: PathBuf| {
            std::fs::create_dir_all(&path)
                .map_err(|source| S3ServerError::CreateDir { path, source })
        };
        create(self.root.clone())?;
        for bucket in &self.buckets {
            create(self.root.join(bucket))?;
        }
        Ok(())
    }
}

impl EmbeddedS3Config {
    /// The endpoint `config` describes: objects under `DATA_DIR/objects`, the configured
    /// credentials and buckets, events for the originals bucket when `object_store.notify` is on.
    pub fn from_config(config: &imgpipe_contract::config::Config) -> Self {
        let os = &config.object_store;
        EmbeddedS3Config {
            root: config.objects_dir(),
            access_key: os.access_key.clone(),
            secret_key: os.secret_key.clone(),
            region: os.region.clone(),
            buckets: vec![os.originals_bucket.clone(), os.renditions_bucket.clone()],
            notify_buckets: if os.notify {
                vec![os.originals_bucket.clone()]
            } else {
                Vec::new()
            },
            max_object_bytes: config.upload.max_bytes.max(config.resizer.max_bytes),
            max_body_duration: DEFAULT_MAX_BODY_DURATION,
            body_idle_timeout: DEFAULT_BODY_IDLE_TIMEOUT,
        }
    }
}
