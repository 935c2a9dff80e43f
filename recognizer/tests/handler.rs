//! The bus handler with the real classifier, the real embedded bus (SQLite) and an in-memory
//! object store.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use imgpipe_bus_sqlite::SqliteBus;
use imgpipe_contract::bus::{Bus, BusError, Consumer, DeadLetter, Message, Subscription, headers};
use imgpipe_contract::event::{RenditionInfo, RenditionsReady, SourceImage, TagsReady, Topic};
use imgpipe_contract::store::{ObjectInfo, ObjectStore, PresignedRequest, StoreError};
use imgpipe_recognizer::RecognizerHandler;
use imgpipe_runtime::worker::{Handler, HandlerError};

/// Objects in memory; `down` makes every call fail as an unreachable store would, `refusing` as
/// a store denying access would.
#[derive(Default)]
struct MemoryStore {
    objects: Mutex<HashMap<(String, String), Bytes>>,
    reads: Mutex<Vec<String>>,
    down: AtomicBool,
    refusing: AtomicBool,
}

impl MemoryStore {
    fn insert(&self, bucket: &str, key: &str, body: Vec<u8>) {
        self.objects
            .lock()
            .expect("lock")
            .insert((bucket.to_owned(), key.to_owned()), Bytes::from(body));
    }

    fn check_up(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("connection refused".to_owned()));
        }
        if self.refusing.load(Ordering::SeqCst) {
            return Err(StoreError::Rejected("403 access denied".to_owned()));
        }
        Ok(())
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    async fn ensure_bucket(&self, _bucket: &str) -> Result<(), StoreError> {
        self.check_up()
    }

    async fn get(&self, bucket: &str, key: &str, max_bytes: u64) -> Result<Bytes, StoreError> {
        self.check_up()?;
        self.reads
            .lock()
            .expect("lock")
            .push(format!("{bucket}/{key}"));
        let body = self
            .objects
            .lock()
            .expect("lock")
            .get(&(bucket.to_owned(), key.to_owned()))
            .cloned()
            .ok_or_else(|| StoreError::NotFound {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            })?;
        if body.len() as u64 > max_bytes {
            return Err(StoreError::TooLarge {
                size: body.len() as u64,
                limit: max_bytes,
            });
        }
        Ok(body)
    }

    async fn put(&self, bucket: &str, key: &str, body: Bytes, _: &str) -> Result<(), StoreError> {
        self.check_up()?;
        self.insert(bucket, key, body.to_vec());
        Ok(())
    }

    async fn head(&self, _bucket: &str, _key: &str) -> Result<ObjectInfo, StoreError> {
        Err(StoreError::Rejected("not needed by these tests".to_owned()))
    }

    async fn delete(&self, _: &str, _: &str) -> Result<(), StoreError> {
        Err(StoreError::Rejected("not needed by these tests".to_owned()))
    }

    async fn presign_put(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: u64,
        _: Duration,
    ) -> Result<PresignedRequest, StoreError> {
        Err(StoreError::Rejected("not needed by these tests".to_owned()))
    }

    async fn presign_get(
        &self,
        _: &str,
        _: &str,
        _: Duration,
    ) -> Result<PresignedRequest, StoreError> {
        Err(StoreError::Rejected("not needed by these tests".to_owned()))
    }
}

/// A bus whose broker is gone: every call fails as a lost connection would.
struct UnavailableBus;

#[async_trait]
impl Bus for UnavailableBus {
    async fn publish(&self, _: Message) -> Result<(), BusError> {
        Err(BusError::Unavailable("broker gone".to_owned()))
    }

    async fn subscribe(&self, _: &Subscription) -> Result<Box<dyn Consumer>, BusError> {
        Err(BusError::Unavailable("broker gone".to_owned()))
    }

    async fn declare(&self, _: &Subscription) -> Result<(), BusError> {
        Err(BusError::Unavailable("broker gone".to_owned()))
    }

    async fn dead_letters(&self, _: &str, _: u32) -> Result<Vec<DeadLetter>, BusError> {
        Err(BusError::Unavailable("broker gone".to_owned()))
    }

    async fn queue_depth(&self, _: &str) -> Result<u64, BusError> {
        Err(BusError::Unavailable("broker gone".to_owned()))
    }

    async fn ping(&self) -> Result<(), BusError> {
        Err(BusError::Unavailable("broker gone".to_owned()))
    }
}

/// Where the tests read what the handler published.
const TAGS_QUEUE: &str = "test-tags";

struct Fixture {
    store: Arc<MemoryStore>,
    bus: Arc<SqliteBus>,
    handler: RecognizerHandler,
    _dir: tempfile::TempDir,
}

/// The real embedded bus in a temp dir, with a queue bound to `TagsReady` declared up front so
/// every published message is kept for [`Fixture::published`].
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let bus = Arc::new(
        SqliteBus::open(&dir.path().join("bus.sqlite"))
            .await
            .expect("open bus"),
    );
    bus.declare(&Subscription::new(TAGS_QUEUE, &[Topic::TAGS_READY]))
        .await
        .expect("declare");
    let store = Arc::new(MemoryStore::default());
    let handler = RecognizerHandler::new(common::classifier(), store.clone(), bus.clone(), 5);
    Fixture {
        store,
        bus,
        handler,
        _dir: dir,
    }
}

impl Fixture {
    /// Everything published on `TagsReady` so far, in order (consumed and acknowledged).
    async fn published(&self) -> Vec<Message> {
        let mut consumer = self
            .bus
            .subscribe(&Subscription::new(TAGS_QUEUE, &[Topic::TAGS_READY]))
            .await
            .expect("subscribe");
        let mut messages = Vec::new();
        while let Ok(delivery) =
            tokio::time::timeout(Duration::from_millis(300), consumer.next()).await
        {
            let delivery = delivery.expect("delivery");
            messages.push(delivery.message.clone());
            delivery.ack().await.expect("ack");
        }
        messages
    }
}

fn rendition(key: &str) -> RenditionInfo {
    RenditionInfo {
        bucket: "renditions".to_owned(),
        key: key.to_owned(),
        width: 451,
        height: 300,
        content_type: "image/jpeg".to_owned(),
        size: 0,
    }
}

/// A `RenditionsReady` for image `id`, as the resizer publishes it.
fn renditions_ready(id: &str) -> Message {
    let event = RenditionsReady {
        image_id: id.to_owned(),
        source: SourceImage {
            bucket: "originals".to_owned(),
            key: format!("{id}/chelsea.jpg"),
            etag: Some("\"0123456789abcdef\"".to_owned()),
            size: 38_702,
            format: "jpeg".to_owned(),
            width: 451,
            height: 300,
            camera: None,
        },
        thumb: rendition(&format!("{id}/thumb.jpg")),
        preview: rendition(&format!("{id}/preview.jpg")),
        placeholder: String::new(),
    };
    Message::json(Topic::RENDITIONS_READY, &event)
        .expect("json")
        .with_header(headers::IMAGE_ID, id)
        .with_header(
            headers::TRACEPARENT,
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
}

fn permanent(result: Result<(), HandlerError>) -> String {
    match result {
        Err(HandlerError::Permanent(reason)) => reason,
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

fn bad_input(result: Result<(), HandlerError>) -> String {
    match result {
        Err(HandlerError::BadInput(reason)) => reason,
        other => panic!("expected a bad-input failure, got {other:?}"),
    }
}

fn transient(result: Result<(), HandlerError>) -> String {
    match result {
        Err(HandlerError::Transient(reason)) => reason,
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

#[tokio::test]
async fn publishes_tags_for_the_preview() {
    let f = fixture().await;
    f.store.insert(
        "renditions",
        "img1/preview.jpg",
        common::photo("chelsea.jpg"),
    );
    let input = renditions_ready("img1");
    f.handler.handle(&input).await.expect("handled");

    assert_eq!(f.handler.stage(), "recognizer");
    assert_eq!(
        *f.store.reads.lock().expect("lock"),
        ["renditions/img1/preview.jpg"],
        "must read the preview and nothing else"
    );
    let published = f.published().await;
    assert_eq!(published.len(), 1);
    let out = &published[0];
    assert_eq!(out.topic, Topic::TAGS_READY);
    assert_eq!(out.header(headers::IMAGE_ID), Some("img1"));
    assert_eq!(
        out.header(headers::TRACEPARENT),
        input.header(headers::TRACEPARENT)
    );
    let ready: TagsReady = serde_json::from_slice(&out.payload).expect("TagsReady");
    assert_eq!(ready.image_id, "img1");
    assert_eq!(ready.source_etag.as_deref(), Some("\"0123456789abcdef\""));
    assert_eq!(ready.model, common::classifier().model());
    assert_eq!(ready.tags.len(), 5);
    let names = common::labels(&ready.tags);
    assert!(
        names.iter().any(|l| common::CAT_CLASSES.contains(l)),
        "{names:?}"
    );
    let categories: Vec<&str> = ready.categories.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        categories,
        ["animal", "animal/cat"],
        "{:?}",
        ready.categories
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_messages_each_publish_their_own_tags() {
    let f = Arc::new(fixture().await);
    let photos = ["chelsea.jpg", "coffee.jpg", "china.jpg", "rocket.jpg"];
    for (i, name) in photos.iter().enumerate() {
        f.store.insert(
            "renditions",
            &format!("c{i}/preview.jpg"),
            common::photo(name),
        );
    }
    let mut tasks = Vec::new();
    for i in 0..photos.len() {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            f.handler.handle(&renditions_ready(&format!("c{i}"))).await
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("handled");
    }
    let mut top: Vec<(String, String)> = f
        .published()
        .await
        .iter()
        .map(|m| {
            let ready: TagsReady = serde_json::from_slice(&m.payload).expect("TagsReady");
            (ready.image_id, ready.tags[0].label.clone())
        })
        .collect();
    top.sort();
    let labels: Vec<&str> = top.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(labels[1..], ["espresso", "palace", "missile"], "{top:?}");
    assert!(common::CAT_CLASSES.contains(&labels[0]), "{top:?}");
}

#[tokio::test]
async fn a_redelivery_publishes_the_same_tags() {
    let f = fixture().await;
    f.store.insert(
        "renditions",
        "img2/preview.jpg",
        common::photo("coffee.jpg"),
    );
    let input = renditions_ready("img2");
    f.handler.handle(&input).await.expect("first");
    f.handler.handle(&input).await.expect("redelivery");
    let published = f.published().await;
    assert_eq!(published.len(), 2);
    assert_eq!(published[0].payload, published[1].payload);
}

#[tokio::test]
async fn a_corrupt_preview_is_bad_input() {
    let f = fixture().await;
    let mut bytes = common::photo("chelsea.jpg");
    bytes.truncate(bytes.len() / 3);
    f.store.insert("renditions", "img3/preview.jpg", bytes);
    let reason = bad_input(f.handler.handle(&renditions_ready("img3")).await);
    assert!(reason.contains("decode"), "{reason}");
    assert!(reason.contains("img3/preview.jpg"), "{reason}");
    assert!(f.published().await.is_empty());
}

#[tokio::test]
async fn an_unparseable_payload_is_permanent() {
    let f = fixture().await;
    let mut message = renditions_ready("img4");
    message.payload = b"{\"image_id\": 42".to_vec();
    let reason = permanent(f.handler.handle(&message).await);
    assert!(reason.contains("RenditionsReady"), "{reason}");
}

/// The runtime's one policy for object store errors: a missing or oversized preview is bad input
/// (retried a bounded number of times, then dead-lettered), naming the preview.
#[tokio::test]
async fn a_missing_or_oversized_preview_is_bad_input() {
    let f = fixture().await;
    let reason = bad_input(f.handler.handle(&renditions_ready("img6")).await);
    assert!(
        reason.contains("preview renditions/img6/preview.jpg"),
        "{reason}"
    );

    f.store.insert(
        "renditions",
        "img7/preview.jpg",
        common::photo("chelsea.jpg"),
    );
    let small = RecognizerHandler::new(common::classifier(), f.store.clone(), f.bus.clone(), 5)
        .with_max_preview_bytes(1024);
    let reason = bad_input(small.handle(&renditions_ready("img7")).await);
    assert!(reason.contains("limit"), "{reason}");
    assert!(f.published().await.is_empty());
}

/// An unreachable store, a store refusing the request and a lost bus may all work later.
#[tokio::test]
async fn an_unreachable_or_refusing_store_or_bus_is_transient() {
    let f = fixture().await;
    f.store.insert(
        "renditions",
        "img8/preview.jpg",
        common::photo("chelsea.jpg"),
    );
    let input = renditions_ready("img8");

    f.store.down.store(true, Ordering::SeqCst);
    transient(f.handler.handle(&input).await);
    f.store.down.store(false, Ordering::SeqCst);

    f.store.refusing.store(true, Ordering::SeqCst);
    let reason = transient(f.handler.handle(&input).await);
    assert!(
        reason.contains("preview renditions/img8/preview.jpg"),
        "{reason}"
    );
    f.store.refusing.store(false, Ordering::SeqCst);

    let no_bus = RecognizerHandler::new(
        common::classifier(),
        f.store.clone(),
        Arc::new(UnavailableBus),
        5,
    );
    transient(no_bus.handle(&input).await);

    f.handler.handle(&input).await.expect("recovers");
    assert_eq!(f.published().await.len(), 1);
}
