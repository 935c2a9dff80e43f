//! An upload that cannot be stored whole changes nothing: a body that does not match its
//! declared digest leaves the stored object as it was, and a key the backend cannot store is
//! refused before anything is written.

use std::path::{Path, PathBuf};

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use imgpipe_contract::store::ObjectStore;

use crate::helpers::{ORIGINALS, TestServer, next_event, unquoted};

/// Checks an SDK call failed with `code` and HTTP 400.
fn assert_refused<T, E>(result: Result<T, SdkError<E, HttpResponse>>, code: &str)
where
    T: std::fmt::Debug,
    E: ProvideErrorMetadata + std::fmt::Debug,
{
    let err = result.expect_err(code);
    assert_eq!(err.code(), Some(code), "{err:?}");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
}

/// Every file under `dir`, sidecars included.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn a_put_with_a_wrong_digest_leaves_the_stored_object_untouched() {
    let server = TestServer::start().await;
    let mut events = server.events().await;
    let (sdk, store) = (server.sdk(), server.store());
    let key = "t/img1/photo.jpg";
    let original = sdk
        .put_object()
        .bucket(ORIGINALS)
        .key(key)
        .content_type("image/jpeg")
        .body(ByteStream::from_static(b"original bytes"))
        .send()
        .await
        .expect("first put");
    next_event(&mut events).await;

    let replacement = || {
        sdk.put_object()
            .bucket(ORIGINALS)
            .key(key)
            .content_type("image/png")
            .body(ByteStream::from_static(b"replacement"))
    };
    // MD5 of "hello world", not of the body.
    let wrong_md5 = "XrY7u+Ae7tCTyyK7j1rNww==";
    let zeros_sha256 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let refusals = [
        (replacement().content_md5(wrong_md5), "BadDigest"),
        (replacement().checksum_sha256(zeros_sha256), "BadDigest"),
        (replacement().checksum_crc32("AAAAAA=="), "BadDigest"),
        (replacement().content_md5("not an md5"), "InvalidDigest"),
    ];
    for (put, code) in refusals {
        assert_refused(put.send().await, code);
        let stored = store.get(ORIGINALS, key, 1 << 20).await.expect("get");
        assert_eq!(stored.as_ref(), b"original bytes", "after {code}");
        let head = store.head(ORIGINALS, key).await.expect("head");
        assert_eq!(unquoted(head.etag.as_deref()), unquoted(original.e_tag()));
        assert_eq!(head.content_type.as_deref(), Some("image/jpeg"));
    }
    // No event for the refused uploads: the next one is that of a later upload.
    store
        .put(
            ORIGINALS,
            "t/img2/next.jpg",
            Bytes::from_static(b"n"),
            "image/jpeg",
        )
        .await
        .expect("later put");
    let (event, _) = next_event(&mut events).await;
    assert_eq!(event.records[0].key(), "t/img2/next.jpg");
}

/// The SDK streams a file as a signed aws-chunked body whose CRC32 comes in a trailer, known
/// only once the body has been read: the check must wait for it. (A damaged chunk fails its
/// chunk signature first, so a wrong trailer cannot be produced through the SDK.)
#[tokio::test]
async fn a_streamed_put_with_a_trailing_checksum_is_stored() {
    let server = TestServer::start().await;
    let key = "t/img4/streamed.jpg";
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("body");
    std::fs::write(&path, b"streamed from a file").expect("write body file");
    let body = ByteStream::from_path(&path).await.expect("file body");
    let put = server
        .sdk()
        .put_object()
        .bucket(ORIGINALS)
        .key(key)
        .body(body);
    let output = put.send().await.expect("streamed put");
    assert!(output.checksum_crc32().is_some(), "{output:?}");
    let stored = server.store().get(ORIGINALS, key, 1 << 20).await;
    assert_eq!(stored.expect("get").as_ref(), b"streamed from a file");
}

#[tokio::test]
async fn a_put_with_the_right_digests_is_stored() {
    let server = TestServer::start().await;
    let key = "t/img3/checked.jpg";
    // MD5 and SHA-256 of "hello world".
    server
        .sdk()
        .put_object()
        .bucket(ORIGINALS)
        .key(key)
        .content_md5("XrY7u+Ae7tCTyyK7j1rNww==")
        .checksum_sha256("uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=")
        .body(ByteStream::from_static(b"hello world"))
        .send()
        .await
        .expect("put with digests");
    let stored = server.store().get(ORIGINALS, key, 1 << 20).await;
    assert_eq!(stored.expect("get").as_ref(), b"hello world");
}

/// An upload's key as the upload API makes it: tenant, image id, file name.
fn key_with_file(file: &str) -> String {
    format!("tenant-a/01J8ZK3M4N5P6Q7R8S9T0V1W2X/{file}")
}

#[tokio::test]
async fn a_key_too_long_for_the_backend_is_refused_before_anything_is_written() {
    let server = TestServer::start().await;
    let mut events = server.events().await;
    let sdk = server.sdk();
    let put = |key: &str| {
        sdk.put_object()
            .bucket(ORIGINALS)
            .key(key)
            .content_type("image/jpeg")
            .body(ByteStream::from_static(b"jpeg"))
    };

    // 41 CJK characters are 123 bytes: with the prefix the key's base64 no longer fits in the
    // sidecar's file name, though the object's own file name would.
    let wide = key_with_file(&format!("{}.jpg", "写".repeat(41)));
    assert_refused(put(&wide).send().await, "KeyTooLongError");
    assert_eq!(files_under(&server.root), Vec::<PathBuf>::new());

    // The longest key that fits (159 bytes in this bucket) is stored whole, attributes too.
    let longest = key_with_file(&format!("{}ab.jpg", "写".repeat(39)));
    assert_eq!(longest.len(), 159);
    put(&longest).send().await.expect("longest key");
    let head = server
        .store()
        .head(ORIGINALS, &longest)
        .await
        .expect("head");
    assert_eq!(head.content_type.as_deref(), Some("image/jpeg"));
    let (event, _) = next_event(&mut events).await;
    assert_eq!(event.records[0].key(), longest);
    let over = format!("{longest}x");
    assert_refused(put(&over).send().await, "KeyTooLongError");

    // An open multipart upload's sidecar name is longer still.
    let create = sdk
        .create_multipart_upload()
        .bucket(ORIGINALS)
        .key(&longest);
    assert_refused(create.send().await, "KeyTooLongError");
    let short = sdk
        .create_multipart_upload()
        .bucket(ORIGINALS)
        .key(key_with_file("short.jpg"))
        .send()
        .await;
    assert!(short.is_ok(), "{short:?}");
}
