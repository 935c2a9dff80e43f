//! The S3 operations the pipeline uses, served by s3s-fs, with size and time limits, digests
//! checked before an upload replaces anything, keys the backend cannot store refused, and
//! object-created events added. Everything not forwarded here answers NotImplemented (the
//! trait's default).

use std::collections::HashSet;

use http::{Extensions, HeaderMap, Method, StatusCode, Uri};
use s3s::dto::*;
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use s3s_fs::FileSystem;

use crate::body_deadline::{self, BodyClock, BodyTimeouts, TimeLimit};
use crate::digest::DigestCheck;
use crate::key_limits::{Sidecar, check_storable_key};
use crate::notify::{CreatedBy, Notifier, Written};
use crate::upload_body::{BodyFault, BodyRules, BodyWatch, WatchedBody};

/// s3s-fs's `FileSystem` plus what the pipeline needs from its object store.
pub(crate) struct FsWithEvents {
    fs: FileSystem,
    notifier: Notifier,
    max_object_bytes: u64,
    timeouts: BodyTimeouts,
}

impl FsWithEvents {
    pub(crate) fn new(
        fs: FileSystem,
        notifier: Notifier,
        max_object_bytes: u64,
        timeouts: BodyTimeouts,
    ) -> Self {
        FsWithEvents {
            fs,
            notifier,
            max_object_bytes,
            timeouts,
        }
    }

    fn too_large(&self) -> S3Error {
        let mut err = S3Error::with_message(
            S3ErrorCode::EntityTooLarge,
            format!(
                "Your proposed upload exceeds the maximum allowed object size of {} bytes.",
                self.max_object_bytes
            ),
        );
        err.set_status_code(StatusCode::PAYLOAD_TOO_LARGE);
        err
    }

    /// Refuses before reading a body whose declared length is already too large.
    fn check_declared_length(&self, content_length: Option<i64>) -> S3Result<()> {
        match content_length.and_then(|n| u64::try_from(n).ok()) {
            Some(n) if n > self.max_object_bytes => Err(self.too_large()),
            _ => Ok(()),
        }
    }

    /// Caps the body at the object size limit and the request's time limits, verifies its
    /// `digests`, and watches it for faults.
    fn watch_body(
        &self,
        body: &mut Option<StreamingBlob>,
        uri: &Uri,
        digests: DigestCheck,
    ) -> BodyWatch {
        match body.take() {
            Some(inner) => {
                let allowed =
                    body_deadline::time_allowed(uri, chrono::Utc::now(), self.timeouts.max);
                let rules = BodyRules {
                    limit: self.max_object_bytes,
                    clock: Some(BodyClock::start(allowed, self.timeouts.idle)),
                    digests,
                };
                let (watched, watch) = WatchedBody::wrap(inner, rules);
                *body = Some(watched);
                watch
            }
            None => BodyWatch::default(),
        }
    }

    /// Replaces the backend's InternalError for a body fault with the client's mistake.
    fn explain_body_fault<T>(&self, result: S3Result<T>, watch: &BodyWatch) -> S3Result<T> {
        match (result, watch.fault()) {
            (Err(_), Some(BodyFault::TooLarge)) => Err(self.too_large()),
            (Err(err), Some(BodyFault::Broken)) => Err(S3Error::with_message(
                S3ErrorCode::IncompleteBody,
                format!(
                    "The request body could not be read completely: {}",
                    err.source().map_or_else(String::new, ToString::to_string)
                ),
            )),
            (Err(_), Some(BodyFault::TimedOut(limit))) => Err(S3Error::with_message(
                S3ErrorCode::RequestTimeout,
                match limit {
                    TimeLimit::Deadline => {
                        "The upload body was not complete by its deadline (its presigned \
                        URL's expiry, or the server's limit); nothing was stored."
                            .to_owned()
                    }
                    TimeLimit::Idle(idle) => format!(
                        "No part of the upload body arrived for {} s; nothing was stored.",
                        idle.as_secs_f32()
                    ),
                },
            )),
            (Err(_), Some(BodyFault::BadDigest(header))) => Err(S3Error::with_message(
                S3ErrorCode::BadDigest,
                format!(
                    "The {header} you specified did not match what we received; \
                     nothing was stored."
                ),
            )),
            (result, _) => result,
        }
    }

    /// s3s-fs would create a missing bucket's directory on PUT; S3 answers NoSuchBucket.
    async fn require_bucket(&self, bucket: &str) -> S3Result<()> {
        let input = HeadBucketInput {
            bucket: bucket.to_owned(),
            ..Default::default()
        };
        self.fs.head_bucket(internal_request(input)).await.map(drop)
    }

    /// Sums the parts a completion names, so an object assembled from parts obeys the limit too.
    async fn check_parts_size(&self, input: &CompleteMultipartUploadInput) -> S3Result<()> {
        let named: HashSet<PartNumber> = input
            .multipart_upload
            .as_ref()
            .and_then(|upload| upload.parts.as_ref())
            .map(|parts| parts.iter().filter_map(|p| p.part_number).collect())
            .unwrap_or_default();
        let list = ListPartsInput {
            bucket: input.bucket.clone(),
            key: input.key.clone(),
            upload_id: input.upload_id.clone(),
            ..Default::default()
        };
        let listed = self.fs.list_parts(internal_request(list)).await?.output;
        let total: u64 = listed
            .parts
            .unwrap_or_default()
            .iter()
            .filter(|p| p.part_number.is_some_and(|n| named.contains(&n)))
            .filter_map(|p| p.size.and_then(|s| u64::try_from(s).ok()))
            .sum();
        if total > self.max_object_bytes {
            return Err(self.too_large());
        }
        Ok(())
    }

    /// Publishes the object-created event when `bucket` notifies. Runs before the client hears
    /// of success: an acknowledged upload always has its event, and a failed publish makes the
    /// client retry (the stored object is simply overwritten).
    async fn announce(&self, how: CreatedBy, bucket: String, key: String) -> S3Result<()> {
        // A key ending in '/' is a directory marker, not an image.
        if !self.notifier.notifies(&bucket) || key.ends_with('/') {
            return Ok(());
        }
        // Read back what was stored: chunked uploads carry no length, and multipart and copy
        // ETags and content types are only known to the backend.
        let input = HeadObjectInput {
            bucket: bucket.clone(),
            key: key.clone(),
            ..Default::default()
        };
        let stored = self
            .fs
            .head_object(internal_request(input))
            .await
            .map_err(|err| {
                tracing::error!(%bucket, %key, ?err, "stored object cannot be read back");
                S3Error::with_message(
                    S3ErrorCode::InternalError,
                    "The object was stored but could not be read back to announce it; retry.",
                )
            })?
            .output;
        let object = Written {
            bucket,
            key,
            size: stored
                .content_length
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
            etag: stored.e_tag.map(ETag::into_value),
            content_type: stored.content_type,
        };
        let (bucket, key) = (object.bucket.clone(), object.key.clone());
        self.notifier.publish(how, object).await.map_err(|err| {
            tracing::error!(%bucket, %key, %err, "object-created event not published");
            S3Error::with_message(
                S3ErrorCode::ServiceUnavailable,
                "The object-created event could not be published; retry the upload.",
            )
        })
    }
}

/// A request for calling the backend directly; s3s-fs reads only the input of these operations.
fn internal_request<T>(input: T) -> S3Request<T> {
    S3Request {
        input,
        method: Method::GET,
        uri: Uri::default(),
        headers: HeaderMap::new(),
        extensions: Extensions::new(),
        credentials: None,
        region: None,
        service: None,
        trailing_headers: None,
    }
}

#[async_trait::async_trait]
impl S3 for FsWithEvents {
    async fn put_object(
        &self,
        mut req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.require_bucket(&req.input.bucket).await?;
        check_storable_key(&req.input.bucket, &req.input.key, Sidecar::Object)?;
        self.check_declared_length(req.input.content_length)?;
        let digests = DigestCheck::for_put(&req.input, req.trailing_headers.clone())?;
        let watch = self.watch_body(&mut req.input.body, &req.uri, digests);
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let result = self.fs.put_object(req).await;
        let response = self.explain_body_fault(result, &watch)?;
        self.announce(CreatedBy::Put, bucket, key).await?;
        Ok(response)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        check_storable_key(&req.input.bucket, &req.input.key, Sidecar::Object)?;
        self.check_parts_size(&req.input).await?;
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let response = self.fs.complete_multipart_upload(req).await?;
        self.announce(CreatedBy::CompleteMultipartUpload, bucket, key)
            .await?;
        Ok(response)
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        check_storable_key(&req.input.bucket, &req.input.key, Sidecar::Object)?;
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let response = self.fs.copy_object(req).await?;
        self.announce(CreatedBy::Copy, bucket, key).await?;
        Ok(response)
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.require_bucket(&req.input.bucket).await?;
        check_storable_key(&req.input.bucket, &req.input.key, Sidecar::Upload)?;
        self.fs.create_multipart_upload(req).await
    }

    async fn upload_part(
        &self,
        mut req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        self.check_declared_length(req.input.content_length)?;
        // Parts are not verified against their digests: s3s-fs ignores them, and a part
        // replaces nothing but itself until the upload completes.
        let watch = self.watch_body(&mut req.input.body, &req.uri, DigestCheck::none());
        let result = self.fs.upload_part(req).await;
        self.explain_body_fault(result, &watch)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.fs.abort_multipart_upload(req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        self.fs.list_parts(req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.fs.list_buckets(req).await
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.fs.head_bucket(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.fs.get_bucket_location(req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.fs.get_object(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.fs.head_object(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.fs.delete_object(req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.fs.delete_objects(req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        self.fs.list_objects(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.fs.list_objects_v2(req).await
    }
}
