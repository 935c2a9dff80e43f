//! What every object store backend guarantees through the project's S3 client: buckets created
//! idempotently, objects read back byte for byte with their type, size caps enforced before
//! reading, not-found told apart, and presigned URLs that work for plain HTTP clients and only
//! for the request they were signed for (the upload API's type and size limits rest on it).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::Fixture;
use crate::store::{ObjectStore, StoreError};

/// Runs every object store property as its own test (see [`crate::testing`]): `$factory` is an
/// async function or closure returning a [`Fixture`] whose `Handle` is `Arc<dyn ObjectStore>`.
#[macro_export]
macro_rules! store_conformance {
    ($factory:expr $(,)?) => {
        $crate::__conformance_tests!(
            store,
            $factory,
            [
                buckets_are_created_idempotently,
                an_object_reads_back_byte_for_byte_with_its_type,
                the_size_cap_is_checked_before_reading,
                a_missing_object_is_not_found,
                a_deleted_object_is_gone,
                a_presigned_put_stores_what_a_plain_client_sends,
                a_presigned_put_is_refused_unless_sent_as_signed,
                a_presigned_get_serves_its_object_and_no_other,
            ]
        );
    };
}

const BUCKET: &str = "conformance";
/// The query parameter holding a SigV4 presigned URL's signature.
const SIGNATURE: &str = "X-Amz-Signature=";

/// A body the size of a photo (about 140 KiB, not a round number), the same every run: bytes
/// of a xorshift sequence, so that any byte lost, added or moved shows.
fn photo_sized_body() -> Bytes {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..143_117)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect::<Vec<u8>>()
        .into()
}

/// A key unique to the test, with a space in its name as uploads have.
fn unique_key(name: &str) -> String {
    format!("{}/{name}", uuid::Uuid::now_v7())
}

/// The store with the bucket made, and `body` stored under a fresh key as `image/jpeg`.
async fn stored(store: &dyn ObjectStore, body: &Bytes) -> String {
    store.ensure_bucket(BUCKET).await.expect("create bucket");
    let key = unique_key("red flower.jpg");
    store
        .put(BUCKET, &key, body.clone(), "image/jpeg")
        .await
        .expect("put");
    key
}

/// A client holding no credentials, as a browser; no connection reuse, since a server that
/// answers without reading a body closes the connection.
fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

pub async fn buckets_are_created_idempotently<F: Fixture<Handle = Arc<dyn ObjectStore>>>(
    fixture: &F,
) {
    let store = fixture.open().await;
    store.ensure_bucket(BUCKET).await.expect("create bucket");
    store
        .ensure_bucket(BUCKET)
        .await
        .expect("create bucket again");
    let key = stored(store.as_ref(), &photo_sized_body()).await;
    store
        .ensure_bucket(BUCKET)
        .await
        .expect("create a bucket that holds objects");
    store
        .head(BUCKET, &key)
        .await
        .expect("its objects are kept");
}

pub async fn an_object_reads_back_byte_for_byte_with_its_type<
    F: Fixture<Handle = Arc<dyn ObjectStore>>,
>(
    fixture: &F,
) {
    let store = fixture.open().await;
    let body = photo_sized_body();
    let key = stored(store.as_ref(), &body).await;
    let info = store.head(BUCKET, &key).await.expect("head");
    assert_eq!(info.size, body.len() as u64);
    assert_eq!(info.content_type.as_deref(), Some("image/jpeg"));
    assert!(info.etag.is_some());
    assert_eq!(
        store
            .get(BUCKET, &key, 10 * 1024 * 1024)
            .await
            .expect("get"),
        body
    );
    assert_eq!(
        store
            .get(BUCKET, &key, body.len() as u64)
            .await
            .expect("get at exactly the cap"),
        body
    );
}

pub async fn the_size_cap_is_checked_before_reading<F: Fixture<Handle = Arc<dyn ObjectStore>>>(
    fixture: &F,
) {
    let store = fixture.open().await;
    let body = photo_sized_body();
    let key = stored(store.as_ref(), &body).await;
    match store.get(BUCKET, &key, 100).await {
        Err(StoreError::TooLarge { size, limit }) => {
            assert_eq!((size, limit), (body.len() as u64, 100))
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

pub async fn a_missing_object_is_not_found<F: Fixture<Handle = Arc<dyn ObjectStore>>>(fixture: &F) {
    let store = fixture.open().await;
    store.ensure_bucket(BUCKET).await.expect("create bucket");
    let missing = store
        .head(BUCKET, "no/such-key")
        .await
        .expect_err("missing");
    assert!(missing.is_not_found(), "{missing:?}");
    assert!(
        store
            .get(BUCKET, "no/such-key", 100)
            .await
            .expect_err("missing")
            .is_not_found()
    );
}

/// Deleting removes the object; deleting it again (or any missing key) succeeds.
pub async fn a_deleted_object_is_gone<F: Fixture<Handle = Arc<dyn ObjectStore>>>(fixture: &F) {
    let store = fixture.open().await;
    let body = photo_sized_body();
    let key = stored(store.as_ref(), &body).await;
    store.delete(BUCKET, &key).await.expect("delete");
    let gone = store.head(BUCKET, &key).await.expect_err("gone");
    assert!(gone.is_not_found(), "{gone:?}");
    store
        .delete(BUCKET, &key)
        .await
        .expect("deleting again succeeds");
}

/// A presigned PUT, sent with the headers it names (the client sets the length itself), stores
/// the body, which a presigned GET then serves.
pub async fn a_presigned_put_stores_what_a_plain_client_sends<
    F: Fixture<Handle = Arc<dyn ObjectStore>>,
>(
    fixture: &F,
) {
    let store = fixture.open().await;
    store.ensure_bucket(BUCKET).await.expect("create bucket");
    let body = photo_sized_body();
    let http = plain_client();
    let put_key = unique_key("presigned.jpg");
    let signed = store
        .presign_put(
            BUCKET,
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
        .presign_get(BUCKET, &put_key, Duration::from_secs(60))
        .await
        .expect("presign get");
    let res = http.get(&got.url).send().await.expect("GET");
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.expect("body"), body);
    assert_eq!(
        store
            .get(BUCKET, &put_key, 10 * 1024 * 1024)
            .await
            .expect("get"),
        body
    );
}

/// A presigned PUT names a key, a content type and a length: the store refuses (403) a request
/// that changes any of them, a tampered signature, and the URL after it expired, and keeps
/// nothing from a refused request. Without this, the upload API's type and size checks would
/// be advice.
pub async fn a_presigned_put_is_refused_unless_sent_as_signed<
    F: Fixture<Handle = Arc<dyn ObjectStore>>,
>(
    fixture: &F,
) {
    let store = fixture.open().await;
    store.ensure_bucket(BUCKET).await.expect("create bucket");
    let body = photo_sized_body();
    let http = plain_client();
    let key = unique_key("signed.jpg");
    let presign = |ttl| store.presign_put(BUCKET, &key, "image/jpeg", body.len() as u64, ttl);
    let signed = presign(Duration::from_secs(60)).await.expect("presign");
    // Signed first so that its lifetime runs out while the other requests are tried.
    let short_lived = Duration::from_secs(1);
    let expiring = presign(short_lived).await.expect("presign");
    let expired_at = std::time::Instant::now() + short_lived + Duration::from_secs(1);
    let put = |url: &str, content_type: &str, body: Bytes| {
        let mut req = http.put(url);
        for (k, v) in &signed.headers {
            if !k.eq_ignore_ascii_case("content-length") && !k.eq_ignore_ascii_case("content-type")
            {
                req = req.header(k, v);
            }
        }
        req.header("content-type", content_type).body(body).send()
    };

    let sig_at = signed.url.find(SIGNATURE).expect("a SigV4 URL") + SIGNATURE.len();
    let mut tampered = signed.url.clone();
    let flipped = if &tampered[sig_at..=sig_at] == "0" {
        "1"
    } else {
        "0"
    };
    tampered.replace_range(sig_at..=sig_at, flipped);
    let other_key = signed.url.replace("signed.jpg", "other.jpg");
    assert_ne!(other_key, signed.url);
    let longer = Bytes::from([body.as_ref(), &[0u8; 100]].concat());
    let refused = [
        (
            "another content type",
            put(&signed.url, "image/png", body.clone()),
        ),
        ("another length", put(&signed.url, "image/jpeg", longer)),
        (
            "a tampered signature",
            put(&tampered, "image/jpeg", body.clone()),
        ),
        ("another key", put(&other_key, "image/jpeg", body.clone())),
    ];
    for (what, request) in refused {
        let status = request.await.expect("PUT").status();
        assert_eq!(status, 403, "a presigned PUT with {what}");
    }
    let missing = store.head(BUCKET, &key).await.expect_err("nothing stored");
    assert!(missing.is_not_found(), "{missing:?}");

    tokio::time::sleep_until(expired_at.into()).await;
    let mut req = http.put(&expiring.url);
    for (k, v) in &expiring.headers {
        if !k.eq_ignore_ascii_case("content-length") {
            req = req.header(k, v);
        }
    }
    let status = req.body(body.clone()).send().await.expect("PUT").status();
    assert_eq!(status, 403, "an expired presigned PUT");
    let missing = store.head(BUCKET, &key).await.expect_err("nothing stored");
    assert!(missing.is_not_found(), "{missing:?}");

    let status = put(&signed.url, "image/jpeg", body.clone())
        .await
        .expect("PUT")
        .status();
    assert_eq!(status, 200, "the PUT as signed");
    assert_eq!(
        store
            .get(BUCKET, &key, 10 * 1024 * 1024)
            .await
            .expect("get"),
        body
    );
}

/// A presigned GET serves its object to a client without credentials, and its signature is
/// refused for any other key.
pub async fn a_presigned_get_serves_its_object_and_no_other<
    F: Fixture<Handle = Arc<dyn ObjectStore>>,
>(
    fixture: &F,
) {
    let store = fixture.open().await;
    store.ensure_bucket(BUCKET).await.expect("create bucket");
    let body = photo_sized_body();
    let key = unique_key("presigned.jpg");
    store
        .put(BUCKET, &key, body.clone(), "image/jpeg")
        .await
        .expect("put");
    let http = plain_client();
    let got = store
        .presign_get(BUCKET, &key, Duration::from_secs(60))
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
