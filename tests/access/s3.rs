//! Access control: the embedded s3 endpoint.

use crate::support::*;

/// The credentials every installation once shared (`imgpipe` / `imgpipe-local-secret`) open
/// nothing: list, get, put, and URLs presigned with them are 403. Without a signature nothing is
/// read. A presigned PUT cannot be used again, turned into a copy, or pointed at another key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_s3_credentials_and_misused_upload_urls_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = test_config(dir.path());
    let bucket = config.object_store.originals_bucket.clone();
    let running = spawn(config).await;
    let base = running.base_url.clone();
    let client = Client::new(&base, &admin_key(dir.path()));
    let bytes = photo("chelsea.jpg");
    let ticket = client.upload("cat.jpg", "image/jpeg", bytes.clone()).await;

    let creds: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("s3-credentials.json")).expect("S3 credentials"),
    )
    .expect("json");
    let (access, secret) = (
        creds["access_key"].as_str().expect("access key"),
        creds["secret_key"].as_str().expect("secret key"),
    );
    assert_ne!(access, "imgpipe");
    assert_ne!(secret, "imgpipe-local-secret");
    let own = s3(&base, access, secret);
    // The control: the pipeline's own credentials read the original.
    let got = own
        .get_object()
        .bucket(&bucket)
        .key(&ticket.key)
        .send()
        .await
        .expect("the pipeline's credentials read the original");
    assert_eq!(got.body.collect().await.expect("body").to_vec(), bytes);

    let old = s3(&base, "imgpipe", "imgpipe-local-secret");
    let planted = "default/00000000-0000-7000-8000-000000000000/planted.jpg";
    let refused = [
        (
            "ListBuckets",
            refusal("ListBuckets", old.list_buckets().send().await),
        ),
        (
            "ListObjectsV2",
            refusal(
                "ListObjectsV2",
                old.list_objects_v2().bucket(&bucket).send().await,
            ),
        ),
        (
            "GetObject",
            refusal(
                "GetObject",
                old.get_object()
                    .bucket(&bucket)
                    .key(&ticket.key)
                    .send()
                    .await,
            ),
        ),
        (
            "PutObject",
            refusal(
                "PutObject",
                old.put_object()
                    .bucket(&bucket)
                    .key(planted)
                    .body(ByteStream::from(bytes.clone()))
                    .send()
                    .await,
            ),
        ),
    ];
    for (op, (status, code)) in &refused {
        assert_eq!(*status, 403, "{op} with the old credentials: {code}");
        assert!(
            matches!(
                code.as_str(),
                // s3s answers an unknown access key with NotSignedUp (AWS: InvalidAccessKeyId).
                "InvalidAccessKeyId" | "NotSignedUp" | "AccessDenied" | "SignatureDoesNotMatch"
            ),
            "{op}: {code}"
        );
    }
    assert!(
        !exists(&own, &bucket, planted).await,
        "the old credentials wrote"
    );
    let presigned = old
        .get_object()
        .bucket(&bucket)
        .key(&ticket.key)
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).expect("ttl"))
        .await
        .expect("presign");
    let res = http().get(presigned.uri()).send().await.expect("reachable");
    assert_eq!(res.status(), 403, "GET presigned with the old credentials");

    // No signature, no object.
    let unsigned = http()
        .get(format!("{base}/{bucket}/{}", ticket.key))
        .send()
        .await
        .expect("reachable");
    assert_eq!(unsigned.status(), 403, "unsigned GET of an original");
    let unsigned = http()
        .put(format!("{base}/{bucket}/{planted}"))
        .header("content-type", "image/jpeg")
        .body(bytes.clone())
        .send()
        .await
        .expect("reachable");
    assert_eq!(unsigned.status(), 403, "unsigned PUT");
    assert!(
        !exists(&own, &bucket, planted).await,
        "the unsigned PUT wrote"
    );

    // The used upload URL, again, with other bytes of the same length: refused, object kept.
    let other_bytes: Vec<u8> = bytes.iter().rev().copied().collect();
    let again = put_to(&ticket, &ticket.url, &[], other_bytes.clone()).await;
    assert_eq!(again.status, 403, "upload URL used twice: {}", again.body);
    let kept = own
        .get_object()
        .bucket(&bucket)
        .key(&ticket.key)
        .send()
        .await
        .expect("original");
    assert_eq!(kept.body.collect().await.expect("body").to_vec(), bytes);

    // A fresh upload URL turned into a copy of the original: refused, nothing copied.
    let fresh: Ticket = client
        .request_upload("copy.jpg", "image/jpeg", bytes.len())
        .await
        .json()
        .await
        .expect("ticket");
    let source = format!("/{bucket}/{}", ticket.key);
    let copy = put_to(
        &fresh,
        &fresh.url,
        &[("x-amz-copy-source", &source)],
        bytes.clone(),
    )
    .await;
    assert_eq!(copy.status, 403, "upload URL as a copy: {}", copy.body);
    assert!(!exists(&own, &bucket, &fresh.key).await, "copied");

    // The same fresh URL pointed at another key: refused, nothing written there.
    let elsewhere_id = uuid::Uuid::now_v7().to_string();
    let elsewhere_key = fresh.key.replace(&fresh.image_id, &elsewhere_id);
    let elsewhere_url = fresh.url.replace(&fresh.image_id, &elsewhere_id);
    assert_ne!(elsewhere_url, fresh.url);
    let moved = put_to(&fresh, &elsewhere_url, &[], bytes.clone()).await;
    assert_eq!(
        moved.status, 403,
        "upload URL at another key: {}",
        moved.body
    );
    assert!(
        !exists(&own, &bucket, &elsewhere_key).await,
        "written elsewhere"
    );

    // The control: the fresh URL itself still works, once.
    let put = put_to(&fresh, &fresh.url, &[], bytes.clone()).await;
    assert_eq!(put.status, 200, "the fresh URL as issued: {}", put.body);
    crate::common::wait_idle(&running, DEADLINE).await;
    running.stop().await.expect("clean stop");
}
