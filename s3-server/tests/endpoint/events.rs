use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use imgpipe_bus_sqlite::SqliteBus;
use imgpipe_contract::bus::{Bus, BusError, Consumer, DeadLetter, Message, Subscription};
use imgpipe_contract::event::S3EventRecord;
use imgpipe_contract::store::ObjectStore;

use crate::helpers::{
    DEFAULT_LIMIT, ORIGINALS, REGION, RENDITIONS, TestServer, next_event, unquoted,
};

fn only_record(event: imgpipe_contract::event::S3Event) -> S3EventRecord {
    assert_eq!(event.records.len(), 1, "one record per event");
    event.records.into_iter().next().expect("one record")
}

#[tokio::test]
async fn put_into_a_notifying_bucket_emits_one_standard_event() {
    let server = TestServer::start().await;
    let mut events = server.events().await;
    let store = server.store();

    // Renditions do not notify: the first event must be the original's.
    store
        .put(
            RENDITIONS,
            "0190abc/thumb.webp",
            Bytes::from_static(b"thumb"),
            "image/webp",
        )
        .await
        .expect("put rendition");
    let body = Bytes::from_static(b"pretend jpeg bytes");
    store
        .put(
            ORIGINALS,
            "0190abc/my photo.jpg",
            body.clone(),
            "image/jpeg",
        )
        .await
        .expect("put original");
    let head = store
        .head(ORIGINALS, "0190abc/my photo.jpg")
        .await
        .expect("head");

    let (event, image_id) = next_event(&mut events).await;
    assert_eq!(image_id.as_deref(), Some("0190abc"));
    let record = only_record(event);
    assert_eq!(record.event_version, "2.1");
    assert_eq!(record.event_source, "imgpipe:s3");
    assert_eq!(record.aws_region, REGION);
    assert_eq!(record.event_name, "ObjectCreated:Put");
    assert!(record.is_object_created());
    let age = chrono::Utc::now() - record.event_time;
    assert!(age >= chrono::Duration::zero() && age < chrono::Duration::seconds(30));
    assert_eq!(record.s3.s3_schema_version, "1.0");
    assert_eq!(record.s3.configuration_id, "imgpipe");
    assert_eq!(record.s3.bucket.name, ORIGINALS);
    assert_eq!(record.s3.bucket.arn, "arn:aws:s3:::originals");
    assert_eq!(record.s3.object.key, "0190abc/my+photo.jpg");
    assert_eq!(record.key(), "0190abc/my photo.jpg");
    assert_eq!(record.s3.object.size, Some(body.len() as u64));
    assert_eq!(record.s3.object.e_tag, unquoted(head.etag.as_deref()));
    let etag = record.s3.object.e_tag.as_deref().expect("eTag");
    assert!(
        etag.len() == 32 && etag.chars().all(|c| c.is_ascii_hexdigit()),
        "{etag}"
    );
    assert_eq!(record.s3.object.content_type.as_deref(), Some("image/jpeg"));
    let sequencer = record.s3.object.sequencer.expect("sequencer");
    assert_eq!(sequencer.len(), 16);
    assert!(sequencer.chars().all(|c| c.is_ascii_hexdigit()));
}

#[tokio::test]
async fn chunked_multipart_and_copy_uploads_are_announced() {
    let server = TestServer::start().await;
    let mut events = server.events().await;
    let sdk = server.sdk();

    // SDK defaults: aws-chunked body, no plain content length.
    let put = sdk
        .put_object()
        .bucket(ORIGINALS)
        .key("img1/chunked.png")
        .content_type("image/png")
        .body(ByteStream::from_static(b"0123456789abcdef"))
        .send()
        .await
        .expect("chunked put");
    let (event, image_id) = next_event(&mut events).await;
    assert_eq!(image_id.as_deref(), Some("img1"));
    let put_record = only_record(event);
    assert_eq!(put_record.event_name, "ObjectCreated:Put");
    assert_eq!(put_record.s3.object.size, Some(16));
    assert_eq!(put_record.s3.object.e_tag, unquoted(put.e_tag()));
    assert_eq!(
        put_record.s3.object.content_type.as_deref(),
        Some("image/png")
    );

    let part1 = vec![b'x'; 5 * 1024 * 1024];
    let part2 = vec![b'y'; 10];
    let upload = sdk
        .create_multipart_upload()
        .bucket(ORIGINALS)
        .key("img2/big.jpg")
        .content_type("image/jpeg")
        .send()
        .await
        .expect("create multipart");
    let upload_id = upload.upload_id().expect("upload id");
    let mut parts = Vec::new();
    for (number, data) in [(1, part1.clone()), (2, part2.clone())] {
        let out = sdk
            .upload_part()
            .bucket(ORIGINALS)
            .key("img2/big.jpg")
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(data))
            .send()
            .await
            .expect("upload part");
        parts.push(
            CompletedPart::builder()
                .part_number(number)
                .e_tag(out.e_tag().expect("etag"))
                .build(),
        );
    }
    let done = sdk
        .complete_multipart_upload()
        .bucket(ORIGINALS)
        .key("img2/big.jpg")
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .expect("complete");
    let (event, image_id) = next_event(&mut events).await;
    assert_eq!(image_id.as_deref(), Some("img2"));
    let multipart_record = only_record(event);
    assert_eq!(
        multipart_record.event_name,
        "ObjectCreated:CompleteMultipartUpload"
    );
    assert_eq!(
        multipart_record.s3.object.size,
        Some((part1.len() + part2.len()) as u64)
    );
    assert_eq!(multipart_record.s3.object.e_tag, unquoted(done.e_tag()));
    assert!(
        multipart_record
            .s3
            .object
            .e_tag
            .as_deref()
            .is_some_and(|e| e.ends_with("-2"))
    );
    assert_eq!(
        multipart_record.s3.object.content_type.as_deref(),
        Some("image/jpeg")
    );

    // A copy into a bucket that does not notify is silent; into one that does, announced.
    sdk.copy_object()
        .copy_source("originals/img1/chunked.png")
        .bucket(RENDITIONS)
        .key("img1/copied.png")
        .send()
        .await
        .expect("copy to renditions");
    sdk.copy_object()
        .copy_source("originals/img1/chunked.png")
        .bucket(ORIGINALS)
        .key("img3/copied.png")
        .send()
        .await
        .expect("copy to originals");
    let (event, image_id) = next_event(&mut events).await;
    assert_eq!(image_id.as_deref(), Some("img3"));
    let copy_record = only_record(event);
    assert_eq!(copy_record.event_name, "ObjectCreated:Copy");
    assert_eq!(copy_record.s3.object.key, "img3/copied.png");
    assert_eq!(copy_record.s3.object.size, Some(16));
    assert_eq!(copy_record.s3.object.e_tag, put_record.s3.object.e_tag);
    assert_eq!(
        copy_record.s3.object.content_type.as_deref(),
        Some("image/png")
    );

    // Sequencers increase with every event.
    let seqs = [put_record, multipart_record, copy_record]
        .map(|r| r.s3.object.sequencer.expect("sequencer"));
    assert!(seqs[0] < seqs[1] && seqs[1] < seqs[2], "{seqs:?}");
}

/// A bus that is down.
struct DownBus;

#[async_trait]
impl Bus for DownBus {
    async fn publish(&self, _message: Message) -> Result<(), BusError> {
        Err(BusError::Unavailable("test: bus down".to_owned()))
    }
    async fn subscribe(&self, _s: &Subscription) -> Result<Box<dyn Consumer>, BusError> {
        Err(BusError::Unavailable("test: bus down".to_owned()))
    }
    async fn declare(&self, _s: &Subscription) -> Result<(), BusError> {
        Err(BusError::Unavailable("test: bus down".to_owned()))
    }
    async fn dead_letters(&self, _q: &str, _l: u32) -> Result<Vec<DeadLetter>, BusError> {
        Ok(Vec::new())
    }
    async fn queue_depth(&self, _q: &str) -> Result<u64, BusError> {
        Err(BusError::Unavailable("test: bus down".to_owned()))
    }
    async fn ping(&self) -> Result<(), BusError> {
        Err(BusError::Unavailable("test: bus down".to_owned()))
    }
}

#[tokio::test]
async fn an_upload_whose_event_cannot_be_published_fails_with_503() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bus = SqliteBus::open(&dir.path().join("bus.db"))
        .await
        .expect("bus");
    let server = TestServer::start_with(dir, bus, Arc::new(DownBus), DEFAULT_LIMIT).await;

    let err = server
        .store()
        .put(
            ORIGINALS,
            "img/a.jpg",
            Bytes::from_static(b"jpeg"),
            "image/jpeg",
        )
        .await
        .expect_err("publish failure must fail the put");
    assert!(err.is_transient(), "{err:?}");

    let sdk = aws_sdk_s3::Client::from_conf(
        server
            .sdk()
            .config()
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    let err = sdk
        .put_object()
        .bucket(ORIGINALS)
        .key("img/b.jpg")
        .body(ByteStream::from_static(b"jpeg"))
        .send()
        .await
        .expect_err("publish failure must fail the put");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(503));
    assert_eq!(err.code(), Some("ServiceUnavailable"));

    // Buckets that do not notify do not need the bus.
    server
        .store()
        .put(
            RENDITIONS,
            "img/thumb.webp",
            Bytes::from_static(b"webp"),
            "image/webp",
        )
        .await
        .expect("no event, no bus needed");
}
