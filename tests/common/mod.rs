//! Helpers shared by the end-to-end tests: a pipeline on port 0 in a temp dir, a client that
//! uploads the way a browser does, real photos from the packages `scripts/setup.sh` fetched, and
//! SeaweedFS as a second S3 server (`seaweed.rs`).
#![allow(dead_code)]

pub mod engines;
pub mod seaweed;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use imgpipe::{Roles, Running};
use imgpipe_contract::config::Config;
use serde_json::Value;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// A real photo from tests/photos; a missing one fails the test with what to do.
pub fn photo(name: &str) -> Vec<u8> {
    let path = repo_root().join("tests/photos").join(name);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run `bash scripts/setup.sh` first", path.display()))
}

/// Config for a test pipeline: everything under `data_dir`, the real model, fast retries.
pub fn test_config(data_dir: &Path) -> Config {
    let root = repo_root();
    let mut config = Config::load(None, std::iter::empty()).expect("defaults are valid");
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.data_dir = data_dir.to_owned();
    config.recognizer.model = root.join("models/efficientnet-lite0.onnx");
    config.recognizer.labels = root.join("models/efficientnet-lite0.labels.txt");
    config.recognizer.onnxruntime = root.join("models/libonnxruntime.so");
    config.recognizer.ocr_det_model = root.join("models/ocr/PP-OCRv6_det_small.onnx");
    config.recognizer.ocr_rec_model = root.join("models/ocr/PP-OCRv6_rec_small.onnx");
    config.retry.base_delay_ms = 50;
    config.retry.max_delay_ms = 500;
    config.retry.max_attempts = 3;
    config
}

pub async fn spawn(config: Config) -> Running {
    imgpipe_runtime::telemetry::init("warn", false);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .expect("bind");
    imgpipe::start(config, listener, Roles::all())
        .await
        .expect("pipeline starts")
}

/// What `POST /api/uploads` returns.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Ticket {
    pub image_id: String,
    pub key: String,
    pub url: String,
    pub method: String,
    pub headers: std::collections::BTreeMap<String, String>,
}

/// The admin key a pipeline made at its first start (`DATA_DIR/admin-key`).
pub fn admin_key(data_dir: &Path) -> String {
    let path = data_dir.join("admin-key");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (did the pipeline start?)", path.display()))
        .trim()
        .to_owned()
}

/// An API client acting with one key. Only API requests carry it: a presigned PUT or GET must
/// not (S3 would read an `Authorization` header as its own signature).
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub key: String,
}

impl Client {
    pub fn new(base: &str, key: &str) -> Self {
        // No connection reuse: a server that refuses a PUT without reading its body closes the
        // connection, and a pooled client would fail its next request on it (browsers retry).
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client");
        Client {
            http,
            base: base.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
        }
    }

    /// A request to an API path (`/api/...`) with this client's key.
    pub fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key)
    }

    pub async fn request_upload(
        &self,
        filename: &str,
        content_type: &str,
        size: usize,
    ) -> reqwest::Response {
        self.api(reqwest::Method::POST, "/api/uploads")
            .json(&serde_json::json!({ "filename": filename, "content_type": content_type, "size": size }))
            .send()
            .await
            .expect("upload API reachable")
    }

    /// Asks for a URL, then PUTs the bytes to it with exactly the returned headers, as a browser.
    pub async fn upload(&self, filename: &str, content_type: &str, bytes: Vec<u8>) -> Ticket {
        let res = self
            .request_upload(filename, content_type, bytes.len())
            .await;
        assert_eq!(
            res.status(),
            201,
            "upload refused: {}",
            res.text().await.unwrap_or_default()
        );
        let ticket: Ticket = res.json().await.expect("ticket JSON");
        let put = self.put(&ticket, &ticket.url, bytes).await;
        assert_eq!(
            put.status(),
            200,
            "PUT refused: {}",
            put.text().await.unwrap_or_default()
        );
        ticket
    }

    /// Announces a finished upload (`POST /api/uploads/{id}/complete`), as a client does when
    /// the store cannot notify; panics unless it is accepted.
    pub async fn complete(&self, ticket: &Ticket) {
        let res = self
            .api(
                reqwest::Method::POST,
                &format!("/api/uploads/{}/complete", ticket.image_id),
            )
            .json(&serde_json::json!({ "key": ticket.key }))
            .send()
            .await
            .expect("upload API reachable");
        assert_eq!(
            res.status(),
            202,
            "complete refused: {}",
            res.text().await.unwrap_or_default()
        );
    }

    pub async fn put(&self, ticket: &Ticket, url: &str, bytes: Vec<u8>) -> reqwest::Response {
        let mut req = self
            .http
            .request(ticket.method.parse().expect("method"), url);
        for (k, v) in &ticket.headers {
            req = req.header(k, v);
        }
        req.body(bytes).send().await.expect("store reachable")
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let res = self
            .api(reqwest::Method::GET, path)
            .send()
            .await
            .expect("API reachable");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn image(&self, id: &str) -> Option<Value> {
        let (status, doc) = self.get_json(&format!("/api/images/{id}")).await;
        (status == 200).then_some(doc)
    }

    /// Polls until the image is `done` or `failed`, or panics at the deadline.
    pub async fn wait_terminal(&self, id: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        let mut last = None;
        while Instant::now() < deadline {
            if let Some(doc) = self.image(id).await {
                if matches!(doc["status"].as_str(), Some("done" | "failed")) {
                    return doc;
                }
                last = Some(doc);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("image {id} not finished within {within:?}; last seen: {last:?}");
    }
}

/// Polls until every pipeline queue is empty (all messages settled).
pub async fn wait_idle(running: &Running, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let mut depth = 0;
        for queue in ["resizer", "recognizer", "metadata-store"] {
            depth += running
                .backends
                .bus
                .queue_depth(queue)
                .await
                .expect("bus answers");
        }
        if depth == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "queues not drained within {within:?} ({depth} left)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Labels of a document's tags, in order.
pub fn labels(doc: &Value) -> Vec<String> {
    doc["tags"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t["label"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Width and height of a document's rendition (`thumb` or `preview`).
pub fn dims(doc: &Value, which: &str) -> (u64, u64) {
    let r = &doc["renditions"][which];
    (
        r["width"].as_u64().expect("width"),
        r["height"].as_u64().expect("height"),
    )
}
