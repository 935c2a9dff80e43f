//! The object store seam. Every access goes through `aws-sdk-s3`, so the same code talks to the
//! embedded S3 endpoint, MinIO, Ceph or AWS; the backend is whichever endpoint the config names.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object {bucket}/{key} not found")]
    NotFound { bucket: String, key: String },
    #[error("object is {size} bytes, over the {limit} byte limit")]
    TooLarge { size: u64, limit: u64 },
    #[error("object store unavailable: {0}")]
    Unavailable(String),
    #[error("object store refused the request: {0}")]
    Rejected(String),
}

impl StoreError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }

    /// Worth retrying later (network, throttling), as opposed to a request that will never work.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// What a HEAD tells about an object.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectInfo {
    pub size: u64,
    pub etag: Option<String>,
    pub content_type: Option<String>,
    pub last_modified: Option<DateTime<Utc>>,
}

/// A presigned request a client performs without further credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct PresignedRequest {
    pub method: String,
    pub url: String,
    /// Headers the client must send exactly as given (they are signed).
    pub headers: Vec<(String, String)>,
    pub expires_at: DateTime<Utc>,
}

#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Creates the bucket if it does not exist.
    async fn ensure_bucket(&self, bucket: &str) -> Result<(), StoreError>;

    /// Reads a whole object, refusing (before reading the body) one larger than `max_bytes`.
    async fn get(&self, bucket: &str, key: &str, max_bytes: u64) -> Result<Bytes, StoreError>;

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<(), StoreError>;

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, StoreError>;

    /// Removes an object; removing one that is not there succeeds (S3's semantics).
    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError>;

    /// A PUT URL for exactly this key, content type and length, valid for `ttl`.
    async fn presign_put(
        &self,
        bucket: &str,
        key: &str,
        content_type: &str,
        content_length: u64,
        ttl: Duration,
    ) -> Result<PresignedRequest, StoreError>;

    /// A GET URL for this key, valid for `ttl`.
    async fn presign_get(
        &self,
        bucket: &str,
        key: &str,
        ttl: Duration,
    ) -> Result<PresignedRequest, StoreError>;
}
