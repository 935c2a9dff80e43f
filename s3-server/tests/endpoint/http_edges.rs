use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use imgpipe_contract::store::{ObjectStore, StoreError};
use reqwest::StatusCode;

use crate::helpers::{ORIGINALS, RENDITIONS, TestServer};

#[tokio::test]
async fn browser_preflight_is_answered() {
    let server = TestServer::start().await;
    let response = reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/{ORIGINALS}/img/photo.jpg", server.endpoint),
        )
        .header("origin", "http://example.test")
        .header("access-control-request-method", "PUT")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("preflight");
    assert!(
        matches!(response.status(), StatusCode::OK | StatusCode::NO_CONTENT),
        "{}",
        response.status()
    );
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    assert_eq!(header("access-control-allow-origin"), "*");
    assert!(header("access-control-allow-methods").contains("put"));
    assert!(!header("access-control-allow-headers").is_empty());
}

#[tokio::test]
async fn unsigned_and_badly_signed_requests_are_refused() {
    let server = TestServer::start().await;
    server
        .store()
        .put(
            ORIGINALS,
            "img/a.jpg",
            Bytes::from_static(b"jpeg"),
            "image/jpeg",
        )
        .await
        .expect("put");

    let get = reqwest::get(format!("{}/{ORIGINALS}/img/a.jpg", server.endpoint))
        .await
        .expect("get");
    assert_eq!(get.status(), StatusCode::FORBIDDEN);

    let put = reqwest::Client::new()
        .put(format!("{}/{ORIGINALS}/img/b.jpg", server.endpoint))
        .body("sneaky")
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), StatusCode::FORBIDDEN);
    let head = server.store().head(ORIGINALS, "img/b.jpg").await;
    assert!(head.expect_err("not stored").is_not_found());

    let list = reqwest::get(format!("{}/", server.endpoint))
        .await
        .expect("list");
    assert_eq!(list.status(), StatusCode::FORBIDDEN);

    let wrong_secret = aws_sdk_s3::Client::from_conf(
        server
            .sdk()
            .config()
            .to_builder()
            .credentials_provider(Credentials::new(
                crate::helpers::ACCESS_KEY,
                "not-the-secret",
                None,
                None,
                "test",
            ))
            .build(),
    );
    let err = wrong_secret
        .get_object()
        .bucket(ORIGINALS)
        .key("img/a.jpg")
        .send()
        .await
        .expect_err("wrong secret");
    assert_eq!(err.code(), Some("SignatureDoesNotMatch"));
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(403));
}

#[tokio::test]
async fn uploads_over_the_limit_are_refused() {
    const LIMIT: u64 = 6 * 1024 * 1024;
    let server = TestServer::start_with_limit(LIMIT).await;
    let mut events = server.events().await;
    let too_big = vec![b'z'; LIMIT as usize + 1];

    // The project's client: plain body with Content-Length.
    let err = server
        .store()
        .put(
            ORIGINALS,
            "big/a.jpg",
            Bytes::from(too_big.clone()),
            "image/jpeg",
        )
        .await
        .expect_err("too large");
    assert!(
        matches!(&err, StoreError::Rejected(msg) if msg.contains("EntityTooLarge")),
        "{err:?}"
    );

    // SDK defaults: aws-chunked body, size in x-amz-decoded-content-length.
    let sdk = server.sdk();
    let err = sdk
        .put_object()
        .bucket(ORIGINALS)
        .key("big/b.jpg")
        .body(ByteStream::from(too_big.clone()))
        .send()
        .await
        .expect_err("too large");
    assert_eq!(err.code(), Some("EntityTooLarge"));
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(413));

    // A multipart upload whose parts are each allowed but whose sum is not.
    let upload = sdk
        .create_multipart_upload()
        .bucket(ORIGINALS)
        .key("big/c.jpg")
        .send()
        .await
        .expect("create multipart");
    let upload_id = upload.upload_id().expect("upload id");
    let mut parts = Vec::new();
    for number in 1..=2 {
        let out = sdk
            .upload_part()
            .bucket(ORIGINALS)
            .key("big/c.jpg")
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(vec![b'p'; 5 * 1024 * 1024]))
            .send()
            .await
            .expect("part within the limit");
        parts.push(
            CompletedPart::builder()
                .part_number(number)
                .e_tag(out.e_tag().expect("etag"))
                .build(),
        );
    }
    let err = sdk
        .complete_multipart_upload()
        .bucket(ORIGINALS)
        .key("big/c.jpg")
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .expect_err("assembled object too large");
    assert_eq!(err.code(), Some("EntityTooLarge"));

    for key in ["big/a.jpg", "big/b.jpg", "big/c.jpg"] {
        let head = server.store().head(ORIGINALS, key).await;
        assert!(head.expect_err("nothing stored").is_not_found(), "{key}");
    }

    // Exactly the limit is fine, and is the first event announced.
    server
        .store()
        .put(
            RENDITIONS,
            "big/ok.bin",
            Bytes::from(vec![b'o'; LIMIT as usize]),
            "application/octet-stream",
        )
        .await
        .expect("at the limit");
    server
        .store()
        .put(
            ORIGINALS,
            "big/ok.jpg",
            Bytes::from_static(b"small"),
            "image/jpeg",
        )
        .await
        .expect("small");
    let (event, _) = crate::helpers::next_event(&mut events).await;
    assert_eq!(event.records[0].s3.object.key, "big/ok.jpg");
}
