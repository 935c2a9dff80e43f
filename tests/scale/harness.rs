//! What the scale tests share: the environment of every service process (RabbitMQ, PostgreSQL,
//! the real model, fast retries), real photos cycled to any count, uploads eight at a time,
//! and reading back every document and queue.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use imgpipe_bus_rabbitmq::RabbitBus;
use imgpipe_contract::bus::Bus;
use imgpipe_contract::config::{BusConfig, MetadataConfig};
use serde_json::Value;

use crate::common::{Client, Ticket, repo_root};

/// `IMGPIPE_*` settings every service process of a test gets: the bus and database of the
/// test, retries in fractions of a second, the model files of `scripts/setup.sh`.
pub fn pipeline_env(
    bus: &BusConfig,
    pg: &MetadataConfig,
    max_attempts: u32,
) -> Vec<(String, String)> {
    vec![
        ("IMGPIPE_BUS__KIND".to_owned(), "rabbitmq".to_owned()),
        ("IMGPIPE_BUS__URL".to_owned(), bus.url.clone()),
        ("IMGPIPE_BUS__PREFIX".to_owned(), bus.prefix.clone()),
        ("IMGPIPE_BUS__PREFETCH".to_owned(), "4".to_owned()),
        ("IMGPIPE_METADATA__KIND".to_owned(), "postgres".to_owned()),
        ("IMGPIPE_METADATA__URL".to_owned(), pg.url.clone()),
        ("IMGPIPE_METADATA__SCHEMA".to_owned(), pg.schema.clone()),
        (
            "IMGPIPE_RETRY__MAX_ATTEMPTS".to_owned(),
            max_attempts.to_string(),
        ),
        ("IMGPIPE_RETRY__BASE_DELAY_MS".to_owned(), "200".to_owned()),
        ("IMGPIPE_RETRY__MAX_DELAY_MS".to_owned(), "1000".to_owned()),
        (
            "IMGPIPE_RECOGNIZER__INTRA_THREADS".to_owned(),
            "1".to_owned(),
        ),
        model_path("MODEL", "efficientnet-lite0.onnx"),
        model_path("LABELS", "efficientnet-lite0.labels.txt"),
        model_path("ONNXRUNTIME", "libonnxruntime.so"),
        model_path("OCR_DET_MODEL", "ocr/PP-OCRv6_det_small.onnx"),
        model_path("OCR_REC_MODEL", "ocr/PP-OCRv6_rec_small.onnx"),
    ]
}

fn model_path(key: &str, file: &str) -> (String, String) {
    let path = repo_root().join("models").join(file);
    assert!(
        path.exists(),
        "{}: missing; run `bash scripts/setup.sh` first",
        path.display()
    );
    (
        format!("IMGPIPE_RECOGNIZER__{key}"),
        path.display().to_string(),
    )
}

/// The real photos of tests/photos, cycled to `n` uploads with distinct names.
pub fn photo_set(n: usize) -> Vec<(String, &'static str, Vec<u8>)> {
    let dir = repo_root().join("tests/photos");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}; run `bash scripts/setup.sh`", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("jpg" | "png")))
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "expected the real test photos in {dir:?}"
    );
    (0..n)
        .map(|i| {
            let path = &files[i % files.len()];
            let content_type = match path.extension().and_then(|e| e.to_str()) {
                Some("png") => "image/png",
                _ => "image/jpeg",
            };
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("photo");
            let bytes = std::fs::read(path).expect("photo readable");
            (format!("{i:03}-{name}"), content_type, bytes)
        })
        .collect()
}

/// Who tells the pipeline that an upload has arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announce {
    /// The object store publishes an `ObjectCreated` event (ours does).
    ByStore,
    /// The client calls `POST /api/uploads/{id}/complete` after its PUT, as with a store that
    /// cannot notify.
    ByClient,
}

/// Uploads `photos` through the API and presigned PUTs, eight at a time.
pub async fn upload_all(
    base: &str,
    key: &str,
    photos: Vec<(String, &'static str, Vec<u8>)>,
    announce: Announce,
) -> Vec<Ticket> {
    let mut lanes: Vec<Vec<_>> = (0..8).map(|_| Vec::new()).collect();
    for (i, photo) in photos.into_iter().enumerate() {
        lanes[i % 8].push(photo);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for lane in lanes {
        let client = Client::new(base, key);
        tasks.spawn(async move {
            let mut tickets = Vec::new();
            for (name, content_type, bytes) in lane {
                let ticket = client.upload(&name, content_type, bytes).await;
                if announce == Announce::ByClient {
                    client.complete(&ticket).await;
                }
                tickets.push(ticket);
            }
            tickets
        });
    }
    let mut tickets = Vec::new();
    while let Some(lane) = tasks.join_next().await {
        tickets.extend(lane.expect("upload lane"));
    }
    tickets
}

/// Every document the query API lists, by id, following the keyset cursor.
pub async fn all_documents(client: &Client) -> BTreeMap<String, Value> {
    let mut docs = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/images?limit=100&cursor={c}"),
            None => "/api/images?limit=100".to_owned(),
        };
        let (status, page) = client.get_json(&path).await;
        assert_eq!(status, 200, "{page}");
        for item in page["items"].as_array().into_iter().flatten() {
            let id = item["id"].as_str().expect("id").to_owned();
            assert!(
                docs.insert(id.clone(), item.clone()).is_none(),
                "{id} listed twice"
            );
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return docs,
        }
    }
}

pub fn count(docs: &BTreeMap<String, Value>, status: &str) -> usize {
    docs.values().filter(|d| d["status"] == status).count()
}

pub async fn wait_drained(bus: &RabbitBus, deadline: Instant) {
    loop {
        let mut depth = 0;
        for queue in ["resizer", "recognizer", "metadata-store"] {
            depth += bus.queue_depth(queue).await.expect("queue depth");
        }
        if depth == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{depth} messages left");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
