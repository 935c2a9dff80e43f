use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use imgpipe_contract::store::ObjectStore;

use crate::helpers::{ORIGINALS, RENDITIONS, TestServer};

#[tokio::test]
async fn put_get_head_list_with_the_project_client() {
    let server = TestServer::start().await;
    let store = server.store();
    store
        .ensure_bucket(RENDITIONS)
        .await
        .expect("existing bucket");
    store.ensure_bucket("scratch").await.expect("new bucket");

    let body = Bytes::from_static(b"not really a jpeg");
    store
        .put(RENDITIONS, "abc/thumb.webp", body.clone(), "image/webp")
        .await
        .expect("put");

    let got = store
        .get(RENDITIONS, "abc/thumb.webp", 1024)
        .await
        .expect("get");
    assert_eq!(got, body);
    let too_small = store.get(RENDITIONS, "abc/thumb.webp", 4).await;
    assert!(too_small.is_err(), "get must refuse objects over max_bytes");

    let info = store
        .head(RENDITIONS, "abc/thumb.webp")
        .await
        .expect("head");
    assert_eq!(info.size, body.len() as u64);
    assert_eq!(info.content_type.as_deref(), Some("image/webp"));
    assert!(info.etag.is_some());
    assert!(info.last_modified.is_some());

    let missing = store.head(RENDITIONS, "abc/missing.webp").await;
    assert!(missing.expect_err("missing object").is_not_found());

    let sdk = server.sdk();
    let listed = sdk
        .list_objects_v2()
        .bucket(RENDITIONS)
        .prefix("abc/")
        .send()
        .await
        .expect("list");
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["abc/thumb.webp"]);

    let buckets = sdk.list_buckets().send().await.expect("list buckets");
    let mut names: Vec<&str> = buckets.buckets().iter().filter_map(|b| b.name()).collect();
    names.sort_unstable();
    assert_eq!(names, [ORIGINALS, RENDITIONS, "scratch"]);

    // The SDK's defaults (aws-chunked body with a CRC32 trailer) keep the content type too.
    sdk.put_object()
        .bucket(RENDITIONS)
        .key("abc/preview.jpg")
        .content_type("image/jpeg")
        .body(ByteStream::from_static(b"jpeg bytes"))
        .send()
        .await
        .expect("sdk put");
    let got = sdk
        .get_object()
        .bucket(RENDITIONS)
        .key("abc/preview.jpg")
        .send()
        .await
        .expect("sdk get");
    assert_eq!(got.content_type(), Some("image/jpeg"));
    assert_eq!(got.content_length(), Some(10));

    sdk.delete_object()
        .bucket(RENDITIONS)
        .key("abc/preview.jpg")
        .send()
        .await
        .expect("delete");
    let gone = store.head(RENDITIONS, "abc/preview.jpg").await;
    assert!(gone.expect_err("deleted").is_not_found());
}

#[tokio::test]
async fn put_into_a_missing_bucket_is_refused() {
    let server = TestServer::start().await;
    let result = server
        .store()
        .put("nonexistent", "k", Bytes::from_static(b"x"), "text/plain")
        .await;
    assert!(result.expect_err("no such bucket").is_not_found());
    assert!(!server.root.join("nonexistent").exists());
}

#[tokio::test]
async fn multipart_upload_with_the_sdk() {
    let server = TestServer::start().await;
    let sdk = server.sdk();
    let part1 = vec![b'a'; 5 * 1024 * 1024];
    let part2 = vec![b'b'; 1024];

    let created = sdk
        .create_multipart_upload()
        .bucket(RENDITIONS)
        .key("big/object.bin")
        .content_type("application/octet-stream")
        .send()
        .await
        .expect("create multipart");
    let upload_id = created.upload_id().expect("upload id");

    let mut parts = Vec::new();
    for (number, data) in [(1, part1.clone()), (2, part2.clone())] {
        let out = sdk
            .upload_part()
            .bucket(RENDITIONS)
            .key("big/object.bin")
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(data))
            .send()
            .await
            .expect("upload part");
        parts.push(
            CompletedPart::builder()
                .part_number(number)
                .e_tag(out.e_tag().expect("part etag"))
                .build(),
        );
    }
    let listed = sdk
        .list_parts()
        .bucket(RENDITIONS)
        .key("big/object.bin")
        .upload_id(upload_id)
        .send()
        .await
        .expect("list parts");
    assert_eq!(listed.parts().len(), 2);

    let done = sdk
        .complete_multipart_upload()
        .bucket(RENDITIONS)
        .key("big/object.bin")
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .expect("complete");
    assert!(done.e_tag().is_some_and(|e| e.ends_with("-2\"")));

    let head = sdk
        .head_object()
        .bucket(RENDITIONS)
        .key("big/object.bin")
        .send()
        .await
        .expect("head");
    assert_eq!(
        head.content_length(),
        Some((part1.len() + part2.len()) as i64)
    );
    assert_eq!(head.content_type(), Some("application/octet-stream"));

    // An aborted upload leaves nothing behind.
    let aborted = sdk
        .create_multipart_upload()
        .bucket(RENDITIONS)
        .key("big/aborted.bin")
        .send()
        .await
        .expect("create multipart");
    sdk.abort_multipart_upload()
        .bucket(RENDITIONS)
        .key("big/aborted.bin")
        .upload_id(aborted.upload_id().expect("upload id"))
        .send()
        .await
        .expect("abort");
}
