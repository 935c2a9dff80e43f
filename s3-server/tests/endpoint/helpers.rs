use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use imgpipe_bus_sqlite::SqliteBus;
use imgpipe_contract::bus::{Bus, Consumer, Subscription};
use imgpipe_contract::event::S3Event;
use imgpipe_contract::store::PresignedRequest;
use imgpipe_s3_client::S3Settings;
use imgpipe_s3_client::S3Store;
use imgpipe_s3_server::{
    DEFAULT_BODY_IDLE_TIMEOUT, DEFAULT_MAX_BODY_DURATION, EmbeddedS3Config, router,
};
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

pub const ACCESS_KEY: &str = "test-access";
pub const SECRET_KEY: &str = "test-secret-key";
pub const REGION: &str = "us-east-1";
/// Notifies.
pub const ORIGINALS: &str = "originals";
/// Does not notify.
pub const RENDITIONS: &str = "renditions";
/// Generous enough for a two-part multipart upload (parts are at least 5 MiB).
pub const DEFAULT_LIMIT: u64 = 16 * 1024 * 1024;

/// A running endpoint on 127.0.0.1 with its bus; dropped with the test.
pub struct TestServer {
    pub endpoint: String,
    pub bus: SqliteBus,
    pub root: PathBuf,
    _dir: TempDir,
}

impl TestServer {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let bus = SqliteBus::open(&dir.path().join("bus.db"))
            .await
            .expect("open bus");
        Self::start_with(dir, bus.clone(), Arc::new(bus), DEFAULT_LIMIT).await
    }

    pub async fn start_with_limit(max_object_bytes: u64) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let bus = SqliteBus::open(&dir.path().join("bus.db"))
            .await
            .expect("open bus");
        Self::start_with(dir, bus.clone(), Arc::new(bus), max_object_bytes).await
    }

    /// Serves with the test configuration as `configure` changes it.
    pub async fn start_configured(configure: impl FnOnce(&mut EmbeddedS3Config)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let bus = SqliteBus::open(&dir.path().join("bus.db"))
            .await
            .expect("open bus");
        Self::serve(dir, bus.clone(), Arc::new(bus), configure).await
    }

    /// Serves with `publish_bus` as the endpoint's bus (e.g. one that fails).
    pub async fn start_with(
        dir: TempDir,
        bus: SqliteBus,
        publish_bus: Arc<dyn Bus>,
        max_object_bytes: u64,
    ) -> Self {
        Self::serve(dir, bus, publish_bus, |config| {
            config.max_object_bytes = max_object_bytes;
        })
        .await
    }

    async fn serve(
        dir: TempDir,
        bus: SqliteBus,
        publish_bus: Arc<dyn Bus>,
        configure: impl FnOnce(&mut EmbeddedS3Config),
    ) -> Self {
        let root = dir.path().join("objects");
        let mut config = EmbeddedS3Config {
            root: root.clone(),
            access_key: ACCESS_KEY.to_owned(),
            secret_key: SECRET_KEY.to_owned(),
            region: REGION.to_owned(),
            buckets: vec![ORIGINALS.to_owned(), RENDITIONS.to_owned()],
            notify_buckets: vec![ORIGINALS.to_owned()],
            max_object_bytes: DEFAULT_LIMIT,
            max_body_duration: DEFAULT_MAX_BODY_DURATION,
            body_idle_timeout: DEFAULT_BODY_IDLE_TIMEOUT,
        };
        configure(&mut config);
        let app = router(config, publish_bus).expect("router");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("local addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        TestServer {
            endpoint: format!("http://{addr}"),
            bus,
            root,
            _dir: dir,
        }
    }

    pub fn settings(&self) -> S3Settings {
        S3Settings {
            endpoint: self.endpoint.clone(),
            public_endpoint: self.endpoint.clone(),
            region: REGION.to_owned(),
            access_key: ACCESS_KEY.to_owned(),
            secret_key: SECRET_KEY.to_owned(),
        }
    }

    /// The project's client.
    pub fn store(&self) -> S3Store {
        S3Store::new(&self.settings())
    }

    /// A raw SDK client with the SDK's defaults (CRC32 checksums, aws-chunked bodies).
    pub fn sdk(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// Subscribes to storage events; do it before the writes whose events you expect.
    pub async fn events(&self) -> Box<dyn Consumer> {
        self.bus
            .subscribe(&Subscription::new("test-events", &["storage.#"]))
            .await
            .expect("subscribe")
    }
}

/// The next storage event and its image-id header, acknowledged; fails after a deadline.
pub async fn next_event(consumer: &mut Box<dyn Consumer>) -> (S3Event, Option<String>) {
    let delivery = tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .expect("an event within 10 s")
        .expect("bus delivery");
    let event: S3Event = serde_json::from_slice(&delivery.message.payload).expect("S3 event JSON");
    let image_id = delivery
        .message
        .header(imgpipe_contract::bus::headers::IMAGE_ID)
        .map(str::to_owned);
    assert_eq!(delivery.message.topic, "storage.object.created");
    delivery.ack().await.expect("ack");
    (event, image_id)
}

/// MD5 ETags as the events carry them: no quotes.
pub fn unquoted(etag: Option<&str>) -> Option<String> {
    etag.map(|e| e.trim_matches('"').to_owned())
}

/// Starts a presigned request by hand, as a client that controls its own pace: the request line
/// and the signed headers are sent; the body is the caller's to write (or not).
pub async fn start_raw_request(signed: &PresignedRequest) -> TcpStream {
    let url = reqwest::Url::parse(&signed.url).expect("url");
    let authority = format!(
        "{}:{}",
        url.host_str().expect("host"),
        url.port().expect("port")
    );
    let target = format!("{}?{}", url.path(), url.query().unwrap_or(""));
    let method = &signed.method;
    let mut head =
        format!("{method} {target} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\n");
    for (name, value) in &signed.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut socket = TcpStream::connect(&authority).await.expect("connect");
    socket.write_all(head.as_bytes()).await.expect("write head");
    socket
}
