//! What every object store backend guarantees through the project's S3 client: buckets created
//! idempotently, objects read back byte for byte with their type, size caps enforced before
//! reading, not-found told apart, and presigned URLs that work for plain HTTP clients.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use imgpipe_contract::store::{ObjectStore, StoreError};

pub async fn suite(store: Arc<dyn ObjectStore>) {
    let bucket = "conformance";
    store.ensure_bucket(bucket).await.expect("create bucket");
    store
        .ensure_bucket(bucket)
        .await
        .expect("create bucket again");
    let key = format!("{}/red flower.jpg", uuid::Uuid::now_v7());
    let body = Bytes::from(super::common::photo("flower.jpg"));

    store
        .put(bucket, &key, body.clone(), "image/jpeg")
        .await
        .expect("put");
    let info = store.head(bucket, &key).await.expect("head");
    assert_eq!(info.size, body.len() as u64);
    assert_eq!(info.content_type.as_deref(), Some("image/jpeg"));
    assert!(info.etag.is_some());
    assert_eq!(
        store
            .get(bucket, &key, 10 * 1024 * 1024)
            .await
            .expect("get"),
        body
    );
    match store.get(bucket, &key, 100).await {
        Err(StoreError::TooLarge { size, limit }) => {
            assert_eq!((size, limit), (body.len() as u64, 100))
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let missing = store
        .head(bucket, "no/such-key")
        .await
        .expect_err("missing");
    assert!(missing.is_not_found(), "{missing:?}");
    assert!(
        store
            .get(bucket, "no/such-key", 100)
            .await
            .expect_err("missing")
            .is_not_found()
    );

    // Presigned URLs, used by a client holding no credentials.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let put_key = format!("{}/presigned.jpg", uuid::Uuid::now_v7());
    let signed = store
        .presign_put(
            bucket,
            &put_key,
            "image/jpeg",
            body.len() as u64,
            Duration::from_secs(60),
        )
        .await
        .expect("presign");
    let mut req = http.put(&signed.url);
    for (k, v) in &signed.headers {
        if !k.eq_ignore_ascii_case("content-length") {
            req = req.header(k, v);
        }
    }
    assert_eq!(
        req.body(body.clone()).send().await.expect("PUT").status(),
        200
    );
    let got = store
        .presign_get(bucket, &put_key, Duration::from_secs(60))
        .await
        .expect("presign get");
    let res = http.get(&got.url).send().await.expect("GET");
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.expect("body"), body);
    assert_eq!(
        http.get(got.url.replace("presigned.jpg", "other.jpg"))
            .send()
            .await
            .expect("GET")
            .status(),
        403
    );
}
