use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use chrono::Utc;

use imgpipe_contract::store::{ObjectInfo, ObjectStore, PresignedRequest, StoreError};

/// Where and how to reach an S3 endpoint.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// Endpoint the services use, e.g. `http://127.0.0.1:9000`.
    pub endpoint: String,
    /// Endpoint browsers reach, used in presigned URLs (signatures cover the host).
    pub public_endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
}

/// [`ObjectStore`] over any S3-compatible endpoint.
#[derive(Clone)]
pub struct S3Store {
    client: Client,
    presigner: Client,
}

impl S3Store {
    pub fn new(settings: &S3Settings) -> Self {
        S3Store {
            client: client(settings, &settings.endpoint),
            presigner: client(settings, &settings.public_endpoint),
        }
    }
}

fn client(settings: &S3Settings, endpoint: &str) -> Client {
    let credentials = Credentials::new(
        &settings.access_key,
        &settings.secret_key,
        None,
        None,
        "imgpipe-config",
    );
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(settings.region.clone()))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .force_path_style(true)
        // Presigned URLs must not demand checksum headers a browser cannot compute.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .build();
    Client::from_conf(config)
}

fn classify<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    e: SdkError<E, R>,
    bucket: &str,
    key: &str,
) -> StoreError {
    match &e {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("");
            match code {
                "NoSuchKey" | "NotFound" | "NoSuchBucket" => StoreError::NotFound {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                },
                "SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout" => {
                    StoreError::Unavailable(code.to_owned())
                }
                _ => StoreError::Rejected(format!(
                    "{code}: {}",
                    service.err().message().unwrap_or("")
                )),
            }
        }
        SdkError::ResponseError(_) | SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            StoreError::Unavailable(format!("{e:?}"))
        }
        _ => StoreError::Rejected(format!("{e:?}")),
    }
}

fn presign_config(ttl: Duration) -> Result<PresigningConfig, StoreError> {
    PresigningConfig::expires_in(ttl).map_err(|e| StoreError::Rejected(e.to_string()))
}

fn presigned(req: aws_sdk_s3::presigning::PresignedRequest, ttl: Duration) -> PresignedRequest {
    PresignedRequest {
        method: req.method().to_owned(),
        url: req.uri().to_owned(),
        headers: req
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        expires_at: Utc::now() + ttl,
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn ensure_bucket(&self, bucket: &str) -> Result<(), StoreError> {
        if self
            .client
            .head_bucket()
            .bucket(bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        match self.client.create_bucket().bucket(bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error().and_then(|s| s.code()) {
                Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists") => Ok(()),
                _ => Err(classify(e, bucket, "")),
            },
        }
    }

    async fn get(&self, bucket: &str, key: &str, max_bytes: u64) -> Result<Bytes, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify(e, bucket, key))?;
        let size = out.content_length().unwrap_or(0).max(0) as u64;
        if size > max_bytes {
            return Err(StoreError::TooLarge {
                size,
                limit: max_bytes,
            });
        }
        let data = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(data.into_bytes())
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| classify(e, bucket, key))?;
        Ok(())
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, StoreError> {
        let out = self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify(e, bucket, key))?;
        Ok(ObjectInfo {
            size: out.content_length().unwrap_or(0).max(0) as u64,
            etag: out.e_tag().map(str::to_owned),
            content_type: out.content_type().map(str::to_owned),
            last_modified: out
                .last_modified()
                .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
        })
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify(e, bucket, key))?;
        Ok(())
    }

    async fn presign_put(
        &self,
        bucket: &str,
        key: &str,
        content_type: &str,
        content_length: u64,
        ttl: Duration,
    ) -> Result<PresignedRequest, StoreError> {
        let req = self
            .presigner
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .content_length(content_length as i64)
            .presigned(presign_config(ttl)?)
            .await
            .map_err(|e| classify(e, bucket, key))?;
        Ok(presigned(req, ttl))
    }

    async fn presign_get(
        &self,
        bucket: &str,
        key: &str,
        ttl: Duration,
    ) -> Result<PresignedRequest, StoreError> {
        let req = self
            .presigner
            .get_object()
            .bucket(bucket)
            .key(key)
            .presigned(presign_config(ttl)?)
            .await
            .map_err(|e| classify(e, bucket, key))?;
        Ok(presigned(req, ttl))
    }
}
