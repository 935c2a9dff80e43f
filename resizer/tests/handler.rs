//! The bus handler with the real renderer, an in-memory object store and a bus that records what
//! is published: the runtime's one error policy (`imgpipe_runtime::failure`) decides how each
//! failure is retried.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use imgpipe_contract::bus::{Bus, BusError, Consumer, DeadLetter, Message, Subscription};
use imgpipe_contract::event::{
    CreatedObject, RenditionsReady, S3EventRecord, Topic, object_created_message,
};
use imgpipe_contract::store::{ObjectInfo, ObjectStore, PresignedRequest, StoreError};
use imgpipe_resizer::ResizerHandler;
use imgpipe_runtime::worker::{Handler, HandlerError};

/// Objects in memory; `down` fails every call as an unreachable store would, `refusing` as a
/// store denying access would.
#[derive(Default)]
struct MemoryStore {
    objects: Mutex<HashMap<(String, String), Bytes>>,
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

    fn keys(&self, bucket: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .objects
            .lock()
            .expect("lock")
            .keys()
            .filter(|(b, _)| b == bucket)
            .map(|(_, k)| k.clone())
            .collect();
        keys.sort();
        keys
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

    async fn head(&self, _: &str, _: &str) -> Result<ObjectInfo, StoreError> {
        Err(StoreError::Rejected("not needed by these tests".to_owned()))
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        self.check_up()?;
        self.objects
            .lock()
            .expect("lock")
            .remove(&(bucket.to_owned(), key.to_owned()));
        Ok(())
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

/// Keeps what is published; nothing else is needed by the handler.
#[derive(Default)]
struct RecordingBus {
    published: Mutex<Vec<Message>>,
}

#[async_trait]
impl Bus for RecordingBus {
    async fn publish(&self, message: Message) -> Result<(), BusError> {
        self.published.lock().expect("lock").push(message);
        Ok(())
    }

    async fn subscribe(&self, _: &Subscription) -> Result<Box<dyn Consumer>, BusError> {
        Err(BusError::Unavailable(
            "not needed by these tests".to_owned(),
        ))
    }

    async fn declare(&self, _: &Subscription) -> Result<(), BusError> {
        Ok(())
    }

    async fn dead_letters(&self, _: &str, _: u32) -> Result<Vec<DeadLetter>, BusError> {
        Ok(Vec::new())
    }

    async fn queue_depth(&self, _: &str) -> Result<u64, BusError> {
        Ok(0)
    }

    async fn ping(&self) -> Result<(), BusError> {
        Ok(())
    }
}

const ORIGINALS: &str = "originals";
const RENDITIONS: &str = "renditions";
const MAX_BYTES: u64 = 1024 * 1024;

struct Fixture {
    store: Arc<MemoryStore>,
    bus: Arc<RecordingBus>,
    handler: ResizerHandler,
}

fn fixture() -> Fixture {
    let store = Arc::new(MemoryStore::default());
    let bus = Arc::new(RecordingBus::default());
    let handler = ResizerHandler::new(
        Arc::new(support::renderer()),
        store.clone(),
        bus.clone(),
        RENDITIONS.to_owned(),
        MAX_BYTES,
    );
    Fixture {
        store,
        bus,
        handler,
    }
}

/// The notification of `key` created in the originals bucket.
fn created(key: &str) -> Message {
    object_created_message(S3EventRecord::object_created(
        "imgpipe:s3",
        "us-east-1",
        "ObjectCreated:Put",
        CreatedObject {
            bucket: ORIGINALS.to_owned(),
            key: key.to_owned(),
            size: 0,
            etag: None,
            content_type: Some("image/jpeg".to_owned()),
            sequencer: "1".to_owned(),
        },
    ))
    .expect("message")
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
async fn renders_stores_and_announces_the_renditions() {
    let f = fixture();
    f.store.insert(
        ORIGINALS,
        "news/img1/chelsea.jpg",
        support::photo("chelsea.jpg"),
    );
    f.handler
        .handle(&created("news/img1/chelsea.jpg"))
        .await
        .expect("handled");
    // Renditions live under the original's tenant.
    assert_eq!(
        f.store.keys(RENDITIONS),
        ["news/img1/preview.jpg", "news/img1/thumb.jpg"]
    );
    let published = f.bus.published.lock().expect("lock");
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].topic, Topic::RENDITIONS_READY);
    let ready: RenditionsReady = serde_json::from_slice(&published[0].payload).expect("event");
    assert_eq!(ready.image_id, "img1");
    assert_eq!((ready.source.width, ready.source.height), (451, 300));
}

/// A missing or oversized original is bad input (retried a bounded number of times, in case the
/// store is not consistent yet, then dead-lettered), naming the original.
#[tokio::test]
async fn a_missing_or_oversized_original_is_bad_input() {
    let f = fixture();
    let reason = bad_input(f.handler.handle(&created("img2/gone.jpg")).await);
    assert!(
        reason.contains("original originals/img2/gone.jpg"),
        "{reason}"
    );

    f.store.insert(
        ORIGINALS,
        "img3/huge.jpg",
        vec![0; usize::try_from(MAX_BYTES).expect("fits") + 1],
    );
    let reason = bad_input(f.handler.handle(&created("img3/huge.jpg")).await);
    assert!(
        reason.contains("original originals/img3/huge.jpg"),
        "{reason}"
    );
    assert!(reason.contains("limit"), "{reason}");
    assert!(f.bus.published.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn an_unreachable_or_refusing_store_is_transient() {
    let f = fixture();
    f.store
        .insert(ORIGINALS, "img4/chelsea.jpg", support::photo("chelsea.jpg"));
    let message = created("img4/chelsea.jpg");

    f.store.down.store(true, Ordering::SeqCst);
    let reason = transient(f.handler.handle(&message).await);
    assert!(
        reason.contains("original originals/img4/chelsea.jpg"),
        "{reason}"
    );
    f.store.down.store(false, Ordering::SeqCst);

    f.store.refusing.store(true, Ordering::SeqCst);
    let reason = transient(f.handler.handle(&message).await);
    assert!(
        reason.contains("original originals/img4/chelsea.jpg"),
        "{reason}"
    );
    f.store.refusing.store(false, Ordering::SeqCst);

    f.handler.handle(&message).await.expect("recovers");
    assert_eq!(f.bus.published.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn a_file_that_is_not_an_image_is_bad_input() {
    let f = fixture();
    f.store
        .insert(ORIGINALS, "img5/notes.jpg", b"not a picture".to_vec());
    bad_input(f.handler.handle(&created("img5/notes.jpg")).await);
    assert!(f.store.keys(RENDITIONS).is_empty());
    assert!(f.bus.published.lock().expect("lock").is_empty());
}
