//! Who may do what on the embedded endpoint. The services sign their requests with the internal
//! credentials, which never leave the server: they may do anything. Everyone else holds only the
//! presigned URLs the API issued, and a presigned URL may only read an object (GET, HEAD) or
//! write one new object (PUT), never overwrite one that exists, copy, list or delete. Requests
//! with no signature are refused.

use std::path::PathBuf;

use async_trait::async_trait;
use s3s::S3Result;
use s3s::access::{S3Access, S3AccessContext};
use s3s::path::S3Path;
use s3s::s3_error;

pub(crate) struct PresignedOnly {
    /// Where objects live (`<root>/<bucket>/<key>`), to refuse overwriting one.
    pub root: PathBuf,
}

#[async_trait]
impl S3Access for PresignedOnly {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        if cx.credentials().is_none() {
            return Err(s3_error!(AccessDenied, "a signed request is required"));
        }
        let presigned = cx
            .uri()
            .query()
            .is_some_and(|q| q.contains("X-Amz-Signature="));
        if !presigned {
            // Signed in the headers with the internal credentials: one of our services.
            return Ok(());
        }
        match cx.s3_op().name() {
            "GetObject" | "HeadObject" => Ok(()),
            "PutObject" => {
                if cx.headers().contains_key("x-amz-copy-source") {
                    return Err(s3_error!(AccessDenied, "a presigned upload cannot copy"));
                }
                if self.exists(cx.s3_path()) {
                    return Err(s3_error!(
                        AccessDenied,
                        "this upload URL was used already: the object exists"
                    ));
                }
                Ok(())
            }
            op => Err(s3_error!(
                AccessDenied,
                "{op} is not allowed with a presigned URL"
            )),
        }
    }
}

impl PresignedOnly {
    fn exists(&self, path: &S3Path) -> bool {
        match path {
            S3Path::Object { bucket, key } => self.root.join(&**bucket).join(&**key).exists(),
            _ => false,
        }
    }
}
