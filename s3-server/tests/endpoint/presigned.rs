use std::time::Duration;

use imgpipe_contract::store::{ObjectStore, PresignedRequest};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{ORIGINALS, RENDITIONS, TestServer, next_event, start_raw_request};

/// Performs a presigned request like a browser would: the signed headers, except those
/// replaced (an empty value drops the header, letting the client compute it).
async fn perform(
    request: &PresignedRequest,
    url: &str,
    replace: &[(&str, &str)],
    body: Vec<u8>,
) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).expect("method");
    let mut builder = reqwest::Client::new().request(method, url);
    for (name, value) in &request.headers {
        if !replace.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            builder = builder.header(name, value);
        }
    }
    for (name, value) in replace {
        if !value.is_empty() {
            builder = builder.header(*name, *value);
        }
    }
    builder.body(body).send().await.expect("request sent")
}

/// Status and S3 error code of a response.
async fn outcome(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let code = text
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code.to_owned())
        .unwrap_or_default();
    (status, code)
}

fn tamper_signature(url: &str) -> String {
    let (head, signature) = url.split_once("X-Amz-Signature=").expect("signed url");
    let mut chars: Vec<char> = signature.chars().collect();
    chars[0] = if chars[0] == '0' { '1' } else { '0' };
    format!(
        "{head}X-Amz-Signature={}",
        chars.into_iter().collect::<String>()
    )
}

#[tokio::test]
async fn presigned_put_accepts_exactly_what_was_signed() {
    let server = TestServer::start().await;
    let mut events = server.events().await;
    let store = server.store();
    let key = "img9/from browser.jpg";
    let body = b"presigned jpeg body".to_vec();
    let signed = store
        .presign_put(
            ORIGINALS,
            key,
            "image/jpeg",
            body.len() as u64,
            Duration::from_secs(300),
        )
        .await
        .expect("presign");
    assert_eq!(signed.method, "PUT");
    // The project's presigner signs both headers the browser must send.
    let signed_names: Vec<&str> = signed.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert!(signed_names.contains(&"content-type") && signed_names.contains(&"content-length"));

    let tampered = perform(&signed, &tamper_signature(&signed.url), &[], body.clone()).await;
    assert_eq!(
        outcome(tampered).await,
        (StatusCode::FORBIDDEN, "SignatureDoesNotMatch".to_owned())
    );

    let other_type = perform(
        &signed,
        &signed.url,
        &[("content-type", "image/png")],
        body.clone(),
    );
    assert_eq!(
        outcome(other_type.await).await,
        (StatusCode::FORBIDDEN, "SignatureDoesNotMatch".to_owned())
    );

    // A body of another length, honestly framed, changes the signed Content-Length.
    let mut longer = body.clone();
    longer.extend_from_slice(b" and more");
    let shorter = body[..5].to_vec();
    for other in [longer, shorter] {
        let response = perform(&signed, &signed.url, &[("content-length", "")], other).await;
        assert_eq!(
            outcome(response).await,
            (StatusCode::FORBIDDEN, "SignatureDoesNotMatch".to_owned())
        );
    }
    let head = store.head(ORIGINALS, key).await;
    assert!(head.expect_err("nothing stored yet").is_not_found());

    let ok = perform(&signed, &signed.url, &[], body.clone()).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(ok.headers().contains_key("etag"));

    let stored = store.head(ORIGINALS, key).await.expect("stored");
    assert_eq!(stored.size, body.len() as u64);
    assert_eq!(stored.content_type.as_deref(), Some("image/jpeg"));
    let (event, image_id) = next_event(&mut events).await;
    assert_eq!(image_id.as_deref(), Some("img9"));
    assert_eq!(event.records[0].s3.object.key, "img9/from+browser.jpg");
    assert_eq!(event.records[0].s3.object.size, Some(body.len() as u64));
}

#[tokio::test]
async fn presigned_put_with_a_body_cut_short_stores_nothing() {
    let server = TestServer::start().await;
    let store = server.store();
    let signed = store
        .presign_put(
            RENDITIONS,
            "cut/short.jpg",
            "image/jpeg",
            100,
            Duration::from_secs(300),
        )
        .await
        .expect("presign");
    // The signed Content-Length promises 100 bytes; the client sends 10 and stops.
    let mut socket = start_raw_request(&signed).await;
    socket.write_all(&[b'x'; 10]).await.expect("write body");
    socket.shutdown().await.expect("half-close");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "the server must give up on the truncated body"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("<Code>IncompleteBody</Code>"), "{answer}");

    let head = store.head(RENDITIONS, "cut/short.jpg").await;
    assert!(head.expect_err("nothing stored").is_not_found());
}

#[tokio::test]
async fn expired_presigned_put_is_refused() {
    let server = TestServer::start().await;
    let body = b"late".to_vec();
    let signed = server
        .store()
        .presign_put(
            RENDITIONS,
            "late/a.jpg",
            "image/jpeg",
            body.len() as u64,
            Duration::from_secs(1),
        )
        .await
        .expect("presign");
    // The one fixed wait: the URL must outlive its one-second validity.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let response = perform(&signed, &signed.url, &[], body).await;
    assert_eq!(
        outcome(response).await,
        (StatusCode::FORBIDDEN, "AccessDenied".to_owned())
    );
}

#[tokio::test]
async fn presigned_get_works_from_another_origin() {
    let server = TestServer::start().await;
    let store = server.store();
    store
        .put(
            RENDITIONS,
            "img/thumb.webp",
            bytes::Bytes::from_static(b"webp!"),
            "image/webp",
        )
        .await
        .expect("put");
    let signed = store
        .presign_get(RENDITIONS, "img/thumb.webp", Duration::from_secs(60))
        .await
        .expect("presign get");
    let response = reqwest::Client::new()
        .get(&signed.url)
        .header("origin", "http://example.test")
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(
        headers
            .get("access-control-allow-origin")
            .map(|v| v.as_bytes()),
        Some(&b"*"[..])
    );
    let exposed = headers
        .get("access-control-expose-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(exposed.contains("etag"), "{exposed}");
    assert_eq!(
        headers.get("content-type").map(|v| v.as_bytes()),
        Some(&b"image/webp"[..])
    );
    assert_eq!(response.bytes().await.expect("body").as_ref(), b"webp!");

    let tampered = reqwest::get(tamper_signature(&signed.url))
        .await
        .expect("get");
    assert_eq!(tampered.status(), StatusCode::FORBIDDEN);
}

/// A presigned PUT writes one new object once: used again, turned into a copy, or pointed at
/// another key, it is refused, and the first object is untouched.
#[tokio::test]
async fn presigned_put_writes_one_new_object_once() {
    let server = TestServer::start().await;
    let store = server.store();
    let key = "tenant-a/img1/once.jpg";
    let body = b"first body".to_vec();
    let signed = store
        .presign_put(
            ORIGINALS,
            key,
            "image/jpeg",
            body.len() as u64,
            Duration::from_secs(300),
        )
        .await
        .expect("presign");
    let first = perform(&signed, &signed.url, &[], body.clone()).await;
    assert_eq!(first.status(), StatusCode::OK);

    let again = perform(&signed, &signed.url, &[], b"other body".to_vec()).await;
    assert_eq!(
        outcome(again).await,
        (StatusCode::FORBIDDEN, "AccessDenied".to_owned())
    );

    let other_key = signed.url.replace("once.jpg", "other.jpg");
    let elsewhere = perform(&signed, &other_key, &[], body.clone()).await;
    assert_eq!(elsewhere.status(), StatusCode::FORBIDDEN);

    let fresh_key = "tenant-a/img2/copy.jpg";
    let copy_url = store
        .presign_put(
            ORIGINALS,
            fresh_key,
            "image/jpeg",
            0,
            Duration::from_secs(300),
        )
        .await
        .expect("presign");
    let copy = perform(
        &copy_url,
        &copy_url.url,
        &[("x-amz-copy-source", &format!("/{ORIGINALS}/{key}"))],
        Vec::new(),
    )
    .await;
    assert_eq!(
        copy.status(),
        StatusCode::FORBIDDEN,
        "a presigned PUT is no copy"
    );

    let stored = store
        .get(ORIGINALS, key, 1 << 20)
        .await
        .expect("first object");
    assert_eq!(
        stored.as_ref(),
        body.as_slice(),
        "the first upload is untouched"
    );
    assert!(
        store.get(ORIGINALS, fresh_key, 1 << 20).await.is_err(),
        "nothing copied"
    );
}

/// Only reads and uploads go through presigned URLs: a presigned listing or delete is refused,
/// and so is any unsigned request.
#[tokio::test]
async fn presigned_urls_cannot_list_or_delete() {
    let server = TestServer::start().await;
    let store = server.store();
    store
        .put(
            ORIGINALS,
            "t/img/a.jpg",
            bytes::Bytes::from_static(b"x"),
            "image/jpeg",
        )
        .await
        .expect("put");
    let get = store
        .presign_get(ORIGINALS, "t/img/a.jpg", Duration::from_secs(60))
        .await
        .expect("presign get");
    let read = reqwest::get(&get.url).await.expect("get");
    assert_eq!(read.status(), StatusCode::OK);
    let unsigned = reqwest::get(get.url.split('?').next().expect("path"))
        .await
        .expect("unsigned");
    assert_eq!(unsigned.status(), StatusCode::FORBIDDEN);
    let delete = reqwest::Client::new()
        .delete(&get.url)
        .send()
        .await
        .expect("delete");
    assert_eq!(delete.status(), StatusCode::FORBIDDEN);
    assert!(
        store.head(ORIGINALS, "t/img/a.jpg").await.is_ok(),
        "still there"
    );
}
