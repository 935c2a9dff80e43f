//! The whole pipeline in one process, on real parts: real photos uploaded by plain HTTP PUT to
//! presigned URLs, the embedded S3 endpoint, durable queue and SQLite, the real ONNX model.

mod common;

use std::time::Duration;

use common::{Client, admin_key, dims, labels, photo, spawn, test_config, wait_idle};
use imgpipe_contract::bus::Message;
use imgpipe_contract::event::{
    S3Bucket, S3Entity, S3Event, S3EventRecord, S3Object, Topic, encode_key,
};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(120);

/// (file, content type, labels of which at least one must be in the top 5)
const PHOTOS: &[(&str, &str, &[&str])] = &[
    (
        "chelsea.jpg",
        "image/jpeg",
        &["tabby", "tiger cat", "Egyptian cat"],
    ),
    (
        "coffee.jpg",
        "image/jpeg",
        &["espresso", "cup", "coffee mug"],
    ),
    (
        "china.jpg",
        "image/jpeg",
        &["palace", "monastery", "bell cote"],
    ),
    ("flower.jpg", "image/jpeg", &["daisy"]),
    (
        "hopper.jpg",
        "image/jpeg",
        &["academic gown", "military uniform", "mortarboard"],
    ),
    (
        "motorcycle_left.png",
        "image/png",
        &["moped", "motor scooter"],
    ),
    (
        "rocket.jpg",
        "image/jpeg",
        &["missile", "projectile", "space shuttle"],
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_get_renditions_and_plausible_tags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = spawn(test_config(dir.path())).await;
    let client = Client::new(&running.base_url, &admin_key(dir.path()));

    let mut tickets = Vec::new();
    for (name, content_type, _) in PHOTOS {
        tickets.push(
            client
                .upload(&format!("my {name}"), content_type, photo(name))
                .await,
        );
    }
    for ((name, _, expected), ticket) in PHOTOS.iter().zip(&tickets) {
        let doc = client.wait_terminal(&ticket.image_id, DEADLINE).await;
        assert_eq!(doc["status"], "done", "{name}: {doc}");
        assert_eq!(doc["original"]["filename"], format!("my {name}"));
        let (w, h) = (
            doc["original"]["width"].as_u64().expect("w"),
            doc["original"]["height"].as_u64().expect("h"),
        );
        for (which, side) in [("thumb", 256u64), ("preview", 1280u64)] {
            let (rw, rh) = dims(&doc, which);
            assert_eq!(
                rw.max(rh),
                side.min(w.max(h)),
                "{name} {which} longest side: {rw}x{rh} from {w}x{h}"
            );
            let (ratio, original) = (rw as f64 / rh as f64, w as f64 / h as f64);
            assert!(
                (ratio / original - 1.0).abs() < 0.01,
                "{name} {which} aspect {ratio} vs {original}"
            );
            // The path in the document serves the rendition (with the caller's key), and it
            // is the JPEG it claims to be, cached for good.
            let url = doc["renditions"][which]["url"]
                .as_str()
                .expect("rendition url");
            assert!(
                url.starts_with(&format!(
                    "/api/images/{}/{which}?v=",
                    doc["id"].as_str().unwrap_or_default()
                )),
                "{url}"
            );
            let res = client
                .api(reqwest::Method::GET, url)
                .send()
                .await
                .expect("rendition reachable");
            assert_eq!(res.status(), 200, "{name} {which} URL");
            assert_eq!(
                res.headers()["cache-control"],
                "private, max-age=31536000, immutable"
            );
            let bytes = res.bytes().await.expect("body");
            let img = image::load_from_memory(&bytes).expect("rendition decodes");
            assert_eq!((u64::from(img.width()), u64::from(img.height())), (rw, rh));
        }
        assert!(
            doc["placeholder"].as_str().is_some_and(|p| !p.is_empty()),
            "{name}: placeholder"
        );
        let top5 = labels(&doc);
        assert_eq!(top5.len(), 5, "{name}: {top5:?}");
        assert!(
            top5.iter().any(|l| expected.contains(&l.as_str())),
            "{name}: top-5 {top5:?}, expected one of {expected:?}"
        );
        assert_eq!(doc["model"]["name"], "efficientnet-lite0");
    }

    // Newest first, and keyset pages of 3 walk the whole set exactly once.
    let (_, page) = client.get_json("/api/images?limit=100").await;
    let ids: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    let mut uploaded: Vec<&str> = tickets.iter().map(|t| t.image_id.as_str()).collect();
    uploaded.reverse();
    assert_eq!(ids, uploaded, "newest first");
    let mut walked = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = client
            .get_json(&format!("/api/images?limit=3&cursor={cursor}"))
            .await;
        assert_eq!(status, 200);
        walked.extend(
            page["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|d| d["id"].as_str().expect("id").to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(walked, uploaded);

    // Filters: by tag, by status; and tag counts.
    let cat = labels(&client.image(&tickets[0].image_id).await.expect("cat"))[0].clone();
    let (_, by_tag) = client
        .get_json(&format!("/api/images?tag={}", cat.replace(' ', "%20")))
        .await;
    let tagged: Vec<&str> = by_tag["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert!(
        tagged.contains(&tickets[0].image_id.as_str()),
        "tag {cat} finds the cat"
    );
    assert!(
        !tagged.contains(&tickets[1].image_id.as_str()),
        "tag {cat} does not find the coffee"
    );
    let (_, failed) = client.get_json("/api/images?status=failed").await;
    assert_eq!(failed["items"].as_array().map(Vec::len), Some(0));
    let (status, _) = client.get_json("/api/images?status=bogus").await;
    assert_eq!(status, 400);
    let (_, tags) = client.get_json("/api/tags").await;
    let count = tags
        .as_array()
        .expect("tags")
        .iter()
        .find(|t| t["label"] == cat.as_str())
        .expect("cat counted");
    assert!(count["count"].as_u64() >= Some(1));
    let (status, _) = client.get_json("/api/images/nonexistent").await;
    assert_eq!(status, 404);

    // Operations: health, readiness, and per-stage counters in Prometheus format. Health and
    // readiness answer anyone (probes carry no key); metrics need an admin key.
    let get = |path: &str| client.http.get(format!("{}{path}", client.base)).send();
    assert_eq!(get("/healthz").await.expect("healthz").status(), 200);
    assert_eq!(get("/readyz").await.expect("readyz").status(), 200);
    let metrics = client
        .api(reqwest::Method::GET, "/metrics")
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for stage in ["resizer", "recognizer", "metadata-store"] {
        let line = format!("imgpipe_messages_total{{outcome=\"ok\",stage=\"{stage}\"}}");
        let count = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .and_then(|v| v.trim().parse::<u64>().ok());
        assert!(
            count >= Some(PHOTOS.len() as u64),
            "{stage}: {count:?} in\n{metrics}"
        );
    }
    assert!(
        metrics.contains("imgpipe_queue_depth{queue=\"resizer\"} 0"),
        "{metrics}"
    );

    running.stop().await.expect("clean stop");
}

/// Rebuilds the storage notification the store emitted for an image, from its document.
fn replayed_event(doc: &Value) -> Message {
    let original = &doc["original"];
    let record = S3EventRecord {
        event_version: "2.1".into(),
        event_source: "imgpipe:s3".into(),
        aws_region: "us-east-1".into(),
        event_time: serde_json::from_value(doc["created_at"].clone()).expect("time"),
        event_name: "ObjectCreated:Put".into(),
        s3: S3Entity {
            s3_schema_version: "1.0".into(),
            configuration_id: "imgpipe".into(),
            bucket: S3Bucket {
                name: "originals".into(),
                arn: "arn:aws:s3:::originals".into(),
            },
            object: S3Object {
                key: encode_key(original["key"].as_str().expect("key")),
                size: original["size"].as_u64(),
                e_tag: original["etag"].as_str().map(str::to_owned),
                content_type: original["content_type"].as_str().map(str::to_owned),
                sequencer: original["sequencer"].as_str().map(str::to_owned),
            },
        },
    };
    Message::json(
        Topic::OBJECT_CREATED,
        &S3Event {
            records: vec![record],
        },
    )
    .expect("json")
}

/// The document without its presigned URLs, which are signed afresh on every read.
fn unsigned(mut doc: Value) -> Value {
    for which in ["thumb", "preview"] {
        if let Some(r) = doc["renditions"]
            .get_mut(which)
            .and_then(Value::as_object_mut)
        {
            r.remove("url");
        }
    }
    doc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_event_leaves_one_unchanged_document() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = spawn(test_config(dir.path())).await;
    let client = Client::new(&running.base_url, &admin_key(dir.path()));
    let ticket = client
        .upload("cat.jpg", "image/jpeg", photo("chelsea.jpg"))
        .await;
    let before = client.wait_terminal(&ticket.image_id, DEADLINE).await;
    assert_eq!(before["status"], "done");
    wait_idle(&running, DEADLINE).await;

    // The same notification twice more, as a broker redelivery or an S3 retry would send it:
    // fresh message ids, so only the handlers' idempotency protects the document.
    for _ in 0..2 {
        running
            .backends
            .bus
            .publish(replayed_event(&before))
            .await
            .expect("publish");
    }
    wait_idle(&running, DEADLINE).await;

    let after = client.image(&ticket.image_id).await.expect("still there");
    assert_eq!(unsigned(after), unsigned(before));
    let (_, page) = client.get_json("/api/images").await;
    assert_eq!(
        page["items"].as_array().map(Vec::len),
        Some(1),
        "one document: {page}"
    );
    running.stop().await.expect("clean stop");
}

/// A store that cannot notify: the client announces its upload, and only its own upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_upload_is_processed_when_the_store_does_not_notify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.object_store.notify = false;
    let running = spawn(config).await;
    let client = Client::new(&running.base_url, &admin_key(dir.path()));
    let complete = |id: &str, key: &str| {
        client
            .api(
                reqwest::Method::POST,
                &format!("/api/uploads/{id}/complete"),
            )
            .json(&serde_json::json!({ "key": key }))
            .send()
    };

    let bytes = photo("chelsea.jpg");
    let size = bytes.len() as u64;
    let res = client
        .request_upload("cat.jpg", "image/jpeg", bytes.len())
        .await;
    let ticket: common::Ticket = res.json().await.expect("ticket");
    let early = complete(&ticket.image_id, &ticket.key).await.expect("API");
    assert_eq!(early.status(), 409, "nothing uploaded yet");
    let put = client.put(&ticket, &ticket.url, bytes).await;
    assert_eq!(put.status(), 200);
    wait_idle(&running, DEADLINE).await;
    assert!(
        client.image(&ticket.image_id).await.is_none(),
        "no notification, so no document yet"
    );

    let other = "0190a3e5-0000-7000-8000-000000000000";
    let foreign = complete(other, &ticket.key).await.expect("API");
    assert_eq!(foreign.status(), 400, "a key of another upload");
    // Keys are `<tenant>/<image-id>/<filename>`: the same upload under another tenant than the
    // caller's is not the caller's to complete.
    let (tenant, rest) = ticket.key.split_once('/').expect("tenant/id/name");
    assert_eq!(tenant, "default", "the admin key's tenant: {}", ticket.key);
    let elsewhere = complete(&ticket.image_id, &format!("elsewhere/{rest}"))
        .await
        .expect("API");
    assert_eq!(elsewhere.status(), 400, "a key of another tenant");
    let done = complete(&ticket.image_id, &ticket.key).await.expect("API");
    assert_eq!(done.status(), 202);
    let doc = client.wait_terminal(&ticket.image_id, DEADLINE).await;
    assert_eq!(doc["status"], "done", "{doc}");
    assert!(
        labels(&doc)
            .iter()
            .any(|l| l.contains("cat") || l == "tabby")
    );
    assert_eq!(doc["original"]["size"], size, "size from the HEAD");
    running.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_urls_are_short_lived_and_scoped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.upload.max_bytes = 1024 * 1024;
    config.upload.url_ttl_secs = 2;
    let running = spawn(config).await;
    let client = Client::new(&running.base_url, &admin_key(dir.path()));
    let bytes = photo("chelsea.jpg");

    // The API refuses what it will not sign.
    let res = client.request_upload("a.txt", "text/plain", 10).await;
    assert_eq!(res.status(), 415);
    assert!(res.json::<Value>().await.expect("json")["error"].is_string());
    assert_eq!(
        client
            .request_upload("big.jpg", "image/jpeg", 2 * 1024 * 1024)
            .await
            .status(),
        413
    );
    assert_eq!(
        client
            .request_upload("empty.jpg", "image/jpeg", 0)
            .await
            .status(),
        400
    );

    let ticket: common::Ticket = client
        .request_upload("cat.jpg", "image/jpeg", bytes.len())
        .await
        .json()
        .await
        .expect("ticket");
    assert!(ticket.url.contains("X-Amz-Signature="));

    // Tampered signature.
    let sig_at = ticket.url.find("X-Amz-Signature=").expect("sig") + "X-Amz-Signature=".len();
    let mut tampered = ticket.url.clone();
    let flipped = if &tampered[sig_at..sig_at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    tampered.replace_range(sig_at..sig_at + 1, flipped);
    assert_eq!(
        client.put(&ticket, &tampered, bytes.clone()).await.status(),
        403,
        "tampered signature"
    );
    // Another key with the same signature.
    let other_key = ticket.url.replace("cat.jpg", "dog.jpg");
    assert_eq!(
        client
            .put(&ticket, &other_key, bytes.clone())
            .await
            .status(),
        403,
        "other key"
    );
    // Another content type than declared.
    let mut wrong_type = ticket.clone();
    wrong_type
        .headers
        .insert("content-type".into(), "image/png".into());
    assert_eq!(
        client
            .put(&wrong_type, &ticket.url, bytes.clone())
            .await
            .status(),
        403,
        "other content type"
    );
    // Another length than declared.
    let longer = [bytes.clone(), vec![0u8; 100]].concat();
    assert_eq!(
        client.put(&ticket, &ticket.url, longer).await.status(),
        403,
        "other length"
    );

    // After its lifetime the URL is refused.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        client.put(&ticket, &ticket.url, bytes).await.status(),
        403,
        "expired"
    );
    running.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_requests_are_rate_limited_per_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.upload.rate_per_minute = 2;
    let running = spawn(config).await;
    let client = Client::new(&running.base_url, &admin_key(dir.path()));
    for _ in 0..2 {
        let res = client.request_upload("a.jpg", "image/jpeg", 10).await;
        assert_eq!(res.status(), 201);
    }
    let refused = client.request_upload("a.jpg", "image/jpeg", 10).await;
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After seconds");
    assert!((1..=30).contains(&wait), "{wait}");
    // The query API is not limited with it.
    assert_eq!(client.get_json("/api/images").await.0, 200);
    running.stop().await.expect("clean stop");
}

/// The text in a picture is read (OCR of the preview), kept on the document and searchable with
/// `?q=`, together with tags, categories and file names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_in_pictures_is_found_by_search() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = spawn(test_config(dir.path())).await;
    let client = Client::new(&running.base_url, &admin_key(dir.path()));

    let page = client
        .upload("scan 0142.png", "image/png", photo("page.png"))
        .await;
    let cat = client
        .upload("chelsea.jpg", "image/jpeg", photo("chelsea.jpg"))
        .await;
    let doc = client.wait_terminal(&page.image_id, DEADLINE).await;
    assert_eq!(doc["status"], "done", "{doc}");
    let text: Vec<String> = doc["text"]
        .as_array()
        .expect("text lines")
        .iter()
        .map(|l| l["text"].as_str().expect("line").to_lowercase())
        .collect();
    assert!(
        text.iter().any(|l| l.contains("segmentation")),
        "the page's text is read: {text:?}"
    );
    let cat_doc = client.wait_terminal(&cat.image_id, DEADLINE).await;
    assert_eq!(cat_doc["status"], "done", "{cat_doc}");

    let search = |q: &'static str| {
        let client = &client;
        async move {
            let (status, body) = client.get_json(&format!("/api/images?q={q}")).await;
            assert_eq!(status, 200, "q={q}: {body}");
            body["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|d| d["id"].as_str().expect("id").to_owned())
                .collect::<Vec<_>>()
        }
    };
    let (page_id, cat_id) = (page.image_id.clone(), cat.image_id.clone());
    assert_eq!(
        search("segmentation").await,
        [page_id.as_str()],
        "a word of its text"
    );
    assert_eq!(
        search("Histogram%20SEGMENTATION").await,
        [page_id.as_str()],
        "every word, any case"
    );
    assert_eq!(search("0142").await, [page_id.as_str()], "the file name");
    assert_eq!(search("animal").await, [cat_id.as_str()], "a category");
    assert!(search("segmentation%20animal").await.is_empty());
    let (status, _) = client
        .get_json("/api/images?q=a%20b%20c%20d%20e%20f%20g%20h%20i")
        .await;
    assert_eq!(status, 400, "too many words");

    running.stop().await.expect("clean stop");
}
