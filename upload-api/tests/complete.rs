//! `POST /api/uploads/{id}/complete` against real components: the embedded S3 endpoint (not
//! notifying, like a store that cannot), the SQLite queue and metadata database, API keys in it,
//! and the metadata store's own handler folding what is published into the document.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use imgpipe_auth::Authenticator;
use imgpipe_bus_sqlite::SqliteBus;
use imgpipe_contract::bus::{Bus, Consumer, Message, Subscription};
use imgpipe_contract::config::UploadConfig;
use imgpipe_contract::db::MetadataDb;
use imgpipe_contract::document::Status;
use imgpipe_contract::event::{StageFailed, Topic};
use imgpipe_contract::keys::{KeyRecord, KeyStore, Role};
use imgpipe_db_sqlite::SqliteDb;
use imgpipe_metadata_store::MetadataHandler;
use imgpipe_runtime::worker::Handler;
use imgpipe_s3_client::{S3Settings, S3Store};
use imgpipe_s3_server::EmbeddedS3Config;
use imgpipe_upload_api::{UploadState, router};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

const BUCKET: &str = "originals";
const REGION: &str = "us-east-1";
/// Where the test reads what `/complete` publishes.
const QUEUE: &str = "complete-test";

struct App {
    base: String,
    bus: Arc<SqliteBus>,
    db: Arc<SqliteDb>,
    events: Box<dyn Consumer>,
    http: reqwest::Client,
    _dir: TempDir,
}

/// The upload API with `complete_per_minute`, and no other rate limit.
async fn start(complete_per_minute: u32) -> App {
    let dir = tempfile::tempdir().expect("tempdir");
    let bus = Arc::new(
        SqliteBus::open(&dir.path().join("bus.db"))
            .await
            .expect("bus"),
    );
    let events = bus
        .subscribe(&Subscription::new(QUEUE, &["storage.#"]))
        .await
        .expect("subscribe");
    let db = Arc::new(
        SqliteDb::open(&dir.path().join("meta.db"))
            .await
            .expect("db"),
    );

    let s3 = imgpipe_s3_server::router(
        EmbeddedS3Config {
            root: dir.path().join("objects"),
            access_key: "test-access".to_owned(),
            secret_key: "test-secret-key".to_owned(),
            region: REGION.to_owned(),
            buckets: vec![BUCKET.to_owned()],
            notify_buckets: Vec::new(),
            max_object_bytes: 16 * 1024 * 1024,
            max_body_duration: imgpipe_s3_server::DEFAULT_MAX_BODY_DURATION,
            body_idle_timeout: imgpipe_s3_server::DEFAULT_BODY_IDLE_TIMEOUT,
        },
        bus.clone(),
    )
    .expect("S3 endpoint");
    let s3_endpoint = serve(s3).await;
    let store = S3Store::new(&S3Settings {
        endpoint: s3_endpoint.clone(),
        public_endpoint: s3_endpoint,
        region: REGION.to_owned(),
        access_key: "test-access".to_owned(),
        secret_key: "test-secret-key".to_owned(),
    });

    let state = UploadState {
        store: Arc::new(store),
        bus: bus.clone(),
        bucket: BUCKET.to_owned(),
        region: REGION.to_owned(),
        limits: UploadConfig {
            rate_per_minute: 0,
            min_free_bytes: 0,
            ..UploadConfig::default()
        },
        db: db.clone(),
        data_dir: None,
        complete_per_minute,
    };
    let keys: Arc<dyn KeyStore> = db.clone();
    let base = serve(router(state, Authenticator::new(keys))).await;
    App {
        base,
        bus,
        db,
        events,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    format!("http://{addr}")
}

impl App {
    /// A new uploader key of the tenant `default`.
    async fn key(&self) -> String {
        let new = imgpipe_auth::token::generate().expect("random");
        let record = KeyRecord {
            id: uuid::Uuid::new_v4().to_string(),
            prefix: new.prefix,
            hash: new.hash,
            name: "test".to_owned(),
            role: Role::Uploader,
            tenants: vec!["default".to_owned()],
            created_at: chrono::Utc::now(),
            revoked_at: None,
        };
        self.db.create_key(&record).await.expect("key stored");
        new.key
    }

    /// Asks for a ticket and PUTs a real photo to it; returns (image id, key).
    async fn upload(&self, key: &str) -> (String, String) {
        let bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/photos/chelsea.jpg"
        ))
        .expect("photo");
        let ticket: Value = self
            .http
            .post(format!("{}/api/uploads", self.base))
            .bearer_auth(key)
            .json(&json!({ "filename": "cat.jpg", "content_type": "image/jpeg", "size": bytes.len() }))
            .send()
            .await
            .expect("upload API")
            .json()
            .await
            .expect("ticket");
        let url = ticket["url"].as_str().expect("url");
        let mut put = self.http.put(url);
        for (name, value) in ticket["headers"].as_object().expect("headers") {
            put = put.header(name, value.as_str().expect("header value"));
        }
        let put = put.body(bytes).send().await.expect("S3 endpoint");
        assert_eq!(put.status(), StatusCode::OK);
        let field = |name: &str| ticket[name].as_str().expect("ticket field").to_owned();
        (field("image_id"), field("key"))
    }

    async fn complete(
        &self,
        api_key: &str,
        image_id: &str,
        object_key: &str,
    ) -> (StatusCode, Value) {
        let res = self
            .http
            .post(format!("{}/api/uploads/{image_id}/complete", self.base))
            .bearer_auth(api_key)
            .json(&json!({ "key": object_key }))
            .send()
            .await
            .expect("upload API");
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Messages published and not yet read.
    async fn published(&self) -> u64 {
        self.bus.queue_depth(QUEUE).await.expect("queue depth")
    }

    /// Reads the next published message and acknowledges it.
    async fn next_event(&mut self) -> Message {
        let delivery = tokio::time::timeout(Duration::from_secs(5), self.events.next())
            .await
            .expect("an event in time")
            .expect("delivery");
        let message = delivery.message.clone();
        delivery.ack().await.expect("ack");
        message
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completing_again_does_not_rerun_the_pipeline_unless_it_failed() {
    let mut app = start(100).await;
    let key = app.key().await;
    let (image_id, object_key) = app.upload(&key).await;
    let metadata = MetadataHandler::new(app.db.clone(), BUCKET.to_owned());

    let (status, first) = app.complete(&key, &image_id, &object_key).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    assert_eq!(first["already"], false, "{first}");
    let announced = app.next_event().await;
    assert_eq!(announced.topic, Topic::OBJECT_CREATED);
    metadata.handle(&announced).await.expect("document created");

    // The metadata store has this version: nothing is published again, however often asked.
    for _ in 0..3 {
        let (status, again) = app.complete(&key, &image_id, &object_key).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{again}");
        assert_eq!(again["already"], true, "{again}");
        assert_eq!(again["status"], "pending", "{again}");
    }
    assert_eq!(
        app.published().await,
        0,
        "completing again published an event"
    );

    // The processing failed: completing again is how a client asks for another try.
    let failed = StageFailed {
        image_id: image_id.clone(),
        stage: "resizer".to_owned(),
        reason: "test".to_owned(),
        attempts: 5,
    };
    let report = Message::json(Topic::STAGE_FAILED, &failed)
        .expect("json")
        .follows(&announced);
    metadata.handle(&report).await.expect("failure recorded");
    let doc = app.db.get(&image_id).await.expect("get").expect("document");
    assert_eq!(doc.status, Status::Failed);
    let (status, retry) = app.complete(&key, &image_id, &object_key).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{retry}");
    assert_eq!(retry["already"], false, "{retry}");
    assert_eq!(app.next_event().await.topic, Topic::OBJECT_CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_has_a_rate_limit_per_key() {
    let app = start(3).await;
    let (greedy, other) = (app.key().await, app.key().await);
    let image_id = uuid::Uuid::now_v7().to_string();
    let object_key = format!("default/{image_id}/cat.jpg");
    for n in 0..3 {
        let (status, body) = app.complete(&greedy, &image_id, &object_key).await;
        assert_eq!(
            status,
            StatusCode::CONFLICT,
            "call {n}, nothing uploaded: {body}"
        );
    }
    let res = app
        .http
        .post(format!("{}/api/uploads/{image_id}/complete", app.base))
        .bearer_auth(&greedy)
        .json(&json!({ "key": object_key }))
        .send()
        .await
        .expect("upload API");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    // Another key has its own budget, and the limit is /complete's alone.
    let (status, body) = app.complete(&other, &image_id, &object_key).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (_, object_key) = app.upload(&greedy).await;
    assert!(object_key.ends_with("/cat.jpg"), "{object_key}");
}
