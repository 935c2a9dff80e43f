//! Scale mode end to end: every service its own OS process (two resizers and two recognizers
//! competing on their queues) on the real RabbitMQ and PostgreSQL of this machine, the embedded
//! S3 endpoint as its own process publishing to RabbitMQ. 200 real photos go in; a resizer is
//! killed with SIGKILL and every broker connection is cut while they are processed; still every
//! photo ends `done`, exactly once, and nothing is left in any queue. A corrupt upload lands in the
//! dead-letter queue after bounded retries, shows as failed, and can be replayed.

mod common;
#[path = "scale/harness.rs"]
mod harness;
#[path = "scale/services.rs"]
mod services;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::Client;
use common::engines::{Vhost, fresh_postgres, rabbitmqctl};
use harness::{Announce, all_documents, count, photo_set, upload_all, wait_drained};
use imgpipe_bus_rabbitmq::RabbitBus;
use imgpipe_contract::bus::Bus;
use imgpipe_contract::config::BusConfig;
use imgpipe_db_postgres::PostgresDb;
use serde_json::Value;
use services::Service;

const PHOTOS: usize = 200;
/// Photos uploaded after the broker connections were cut, so the object store's publisher must
/// have reconnected for them to arrive.
const LATE: usize = 20;
const MAX_ATTEMPTS: u32 = 3;
const START: Duration = Duration::from_secs(60);
const DEADLINE: Duration = Duration::from_secs(300);
const PREFIX: &str = "imgpipe";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_processes_on_rabbitmq_and_postgres_lose_nothing() {
    let vhost = Vhost::create();
    let pg = fresh_postgres();
    let bus = BusConfig {
        prefix: PREFIX.to_owned(),
        ..vhost.config()
    };
    let mut env = harness::pipeline_env(&bus, &pg, MAX_ATTEMPTS);
    // No built-in S3 credentials: the object-store process and every process that talks to it
    // get the same ones, made for this run.
    let access_key = format!("scale-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let secret_key = uuid::Uuid::new_v4().simple().to_string();
    env.extend([
        ("IMGPIPE_OBJECT_STORE__ACCESS_KEY".to_owned(), access_key),
        ("IMGPIPE_OBJECT_STORE__SECRET_KEY".to_owned(), secret_key),
    ]);
    // Runs as its own task so that a failure still reaches the clean-up below.
    let outcome = tokio::spawn(scenario(env, bus, vhost.name.clone())).await;
    PostgresDb::drop_schema(&pg)
        .await
        .expect("drop the test schema");
    drop(vhost);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

struct Pipeline {
    /// The admin key the metadata-store process made at its first start (the schema is new).
    admin_key: String,
    store: Service,
    meta: Service,
    api: Service,
    resizers: Vec<Service>,
    recognizers: Vec<Service>,
}

impl Pipeline {
    async fn start(mut env: Vec<(String, String)>, dir: &Path) -> Self {
        let store = services::start("object-store", "object-store", &env, dir, START).await;
        env.push(("IMGPIPE_OBJECT_STORE__KIND".to_owned(), "s3".to_owned()));
        env.push((
            "IMGPIPE_OBJECT_STORE__ENDPOINT".to_owned(),
            store.base_url.clone(),
        ));
        let meta = services::start("metadata-store", "metadata-store", &env, dir, START).await;
        let admin_key = common::admin_key(&dir.join("metadata-store"));
        let api = services::start("upload-api", "upload-api", &env, dir, START).await;
        let mut resizers = Vec::new();
        let mut recognizers = Vec::new();
        for n in 1..=2 {
            resizers
                .push(services::start(&format!("resizer-{n}"), "resizer", &env, dir, START).await);
            recognizers.push(
                services::start(&format!("recognizer-{n}"), "recognizer", &env, dir, START).await,
            );
        }
        Pipeline {
            admin_key,
            store,
            meta,
            api,
            resizers,
            recognizers,
        }
    }

    fn all_mut(&mut self) -> impl Iterator<Item = &mut Service> {
        [&mut self.store, &mut self.meta, &mut self.api]
            .into_iter()
            .chain(self.resizers.iter_mut())
            .chain(self.recognizers.iter_mut())
    }

    fn logs(&mut self) -> String {
        self.all_mut()
            .map(|s| {
                let log = s.log_text();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- {} ---\n{}", s.name, tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

async fn scenario(env: Vec<(String, String)>, bus: BusConfig, vhost: String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut pipeline = Pipeline::start(env, dir.path()).await;
    let key = pipeline.admin_key.clone();
    let api = Client::new(&pipeline.api.base_url, &key);
    let query = Client::new(&pipeline.meta.base_url, &key);

    let mut photos = photo_set(PHOTOS);
    let late = photos.split_off(PHOTOS - LATE);
    let mut tickets = upload_all(&pipeline.api.base_url, &key, photos, Announce::ByStore).await;

    // Fault injection while the photos are being processed.
    let deadline = Instant::now() + DEADLINE;
    let mut killed_at = None;
    let mut cut_at = None;
    while cut_at.is_none() {
        let done = count(&all_documents(&query).await, "done");
        if killed_at.is_none() && done >= 20 {
            pipeline.resizers[0].kill();
            killed_at = Some(done);
        }
        if killed_at.is_some() && done >= 60 {
            rabbitmqctl(&["close_all_connections", "--vhost", &vhost, "scale test"]);
            cut_at = Some(done);
        }
        assert!(
            Instant::now() < deadline,
            "stuck at {done} done:\n{}",
            pipeline.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (killed_at, cut_at) = (killed_at.unwrap_or(0), cut_at.unwrap_or(0));
    assert!(
        cut_at < PHOTOS - LATE,
        "the faults must hit a running batch (cut at {cut_at} done)"
    );

    // After the cut: these reach the pipeline only if the object store reconnected.
    tickets.extend(upload_all(&pipeline.api.base_url, &key, late, Announce::ByStore).await);
    let corrupt = api
        .upload(
            "notes.jpg",
            "image/jpeg",
            b"these are meeting notes, not a JPEG".to_vec(),
        )
        .await;

    let docs = loop {
        let docs = all_documents(&query).await;
        let settled = count(&docs, "done") == PHOTOS
            && docs
                .get(&corrupt.image_id)
                .is_some_and(|d| d["status"] == "failed");
        if settled {
            break docs;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {PHOTOS} done within {DEADLINE:?} (resizer killed at {killed_at}, \
             connections cut at {cut_at}):\n{}",
            count(&docs, "done"),
            pipeline.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Exactly one document per upload: nothing lost, nothing duplicated.
    let uploaded: BTreeSet<String> = tickets
        .iter()
        .chain([&corrupt])
        .map(|t| t.image_id.clone())
        .collect();
    assert_eq!(uploaded.len(), PHOTOS + 1);
    assert_eq!(docs.keys().cloned().collect::<BTreeSet<_>>(), uploaded);
    for ticket in &tickets {
        let doc = &docs[&ticket.image_id];
        assert_eq!(doc["status"], "done", "{doc}");
        assert!(
            doc["renditions"]["thumb"]["width"].as_u64() > Some(0),
            "{doc}"
        );
        assert!(!common::labels(doc).is_empty(), "{doc}");
        assert_eq!(doc["model"]["name"], "efficientnet-lite0", "{doc}");
    }

    // The poison message: retried, then dead-lettered, the image failed with its reason.
    let failed = &docs[&corrupt.image_id];
    assert_eq!(failed["error"]["stage"], "resizer", "{failed}");
    assert_eq!(failed["error"]["attempts"], MAX_ATTEMPTS, "{failed}");
    assert!(
        failed["error"]["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    let (_, listed) = query.get_json("/api/images?status=failed").await;
    let listed: Vec<&str> = listed["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert_eq!(listed, [corrupt.image_id.as_str()]);

    // Broker loss was survived by reconnecting, not by restarting: every process not killed
    // is still the same process, and both recognizers took a share of the work.
    let mut survivors = Vec::new();
    for service in pipeline.all_mut() {
        if service.name != "resizer-1" {
            survivors.push((service.name.clone(), service.is_running()));
        }
    }
    assert!(
        survivors.iter().all(|(_, running)| *running),
        "{survivors:?}"
    );
    for recognizer in &pipeline.recognizers {
        let ok = recognizer
            .metric(
                &key,
                "imgpipe_messages_total",
                &["stage=\"recognizer\"", "outcome=\"ok\""],
            )
            .await;
        assert!(ok > 0.0, "{} handled nothing", recognizer.name);
    }

    // A key revoked through one process stops working in the others within the key cache's
    // lifetime: made and revoked through the metadata store's API, used on the upload API.
    let made = query
        .api(reqwest::Method::POST, "/api/keys")
        .json(&serde_json::json!({ "role": "editor", "name": "revoked in scale mode" }))
        .send()
        .await
        .expect("key API");
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.expect("json");
    let (id, editor) = (
        made["details"]["id"].as_str().expect("id").to_owned(),
        made["key"].as_str().expect("key").to_owned(),
    );
    let on_api = Client::new(&pipeline.api.base_url, &editor);
    let on_meta = Client::new(&pipeline.meta.base_url, &editor);
    assert_eq!(
        on_api
            .request_upload("x.jpg", "image/jpeg", 10)
            .await
            .status(),
        201
    );
    assert_eq!(on_meta.get_json("/api/images?limit=1").await.0, 200);
    let revoked = query
        .api(reqwest::Method::DELETE, &format!("/api/keys/{id}"))
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), 200);
    tokio::time::sleep(imgpipe_auth::CACHE_TTL + Duration::from_secs(1)).await;
    assert_eq!(
        on_api
            .request_upload("x.jpg", "image/jpeg", 10)
            .await
            .status(),
        401
    );
    assert_eq!(on_meta.get_json("/api/images?limit=1").await.0, 401);

    // Nothing left behind in the queues but the one dead letter.
    let inspect = RabbitBus::connect(&bus, MAX_ATTEMPTS)
        .await
        .expect("connect");
    wait_drained(&inspect, deadline).await;
    let dead = inspect
        .dead_letters("resizer", 10)
        .await
        .expect("dead letters");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].attempts, MAX_ATTEMPTS);
    for queue in ["recognizer", "metadata-store"] {
        assert!(
            inspect
                .dead_letters(queue, 10)
                .await
                .expect("dead letters")
                .is_empty()
        );
    }
}
