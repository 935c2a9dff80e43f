//! What the web app relies on, over real HTTP against the embedded pipeline: an editor's tags
//! (kept apart from the model's, found by `?tag=` in any case and by `?q=`, surviving a
//! reprocess), a reprocess that moves the image through the stages again, deletion (original,
//! renditions and document), the event stream (live changes, resumed from `Last-Event-ID`),
//! facets, cacheable renditions, retries shown on the image, one JSON error shape, and CORS
//! preflights for an allowed origin.

mod common;

use std::time::{Duration, Instant};

use common::{Client, admin_key, photo, spawn, test_config};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::mpsc;

const DEADLINE: Duration = Duration::from_secs(120);

/// One server-sent event.
#[derive(Debug, Clone)]
struct Sse {
    event: String,
    id: String,
    data: Value,
}

/// Reads `/api/events` in the background (from `last_event_id` when given) into a channel.
async fn subscribe(client: &Client, last_event_id: Option<&str>) -> mpsc::UnboundedReceiver<Sse> {
    let mut req = client.api(Method::GET, "/api/events");
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let mut res = req.send().await.expect("events reachable");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buffer = String::new();
        while let Ok(Some(chunk)) = res.chunk().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let mut event = Sse {
                    event: "message".into(),
                    id: String::new(),
                    data: Value::Null,
                };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        event.event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        event.id = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        event.data = serde_json::from_str(v).unwrap_or(Value::Null);
                    }
                }
                if !block.starts_with(':') && tx.send(event).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// Waits for the first event that satisfies `want`, returning it and every event before it.
async fn wait_for(
    rx: &mut mpsc::UnboundedReceiver<Sse>,
    what: &str,
    want: impl Fn(&Sse) -> bool,
) -> (Sse, Vec<Sse>) {
    let mut seen = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(event)) if want(&event) => return (event, seen),
            Ok(Some(event)) => seen.push(event),
            _ => panic!("no event {what} within {DEADLINE:?}; saw {seen:#?}"),
        }
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|d| d["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn statuses(events: &[Sse], id: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.event == "image" && e.data["id"] == id)
        .filter_map(|e| e.data["status"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editors_tag_reprocess_and_delete_and_pages_hear_of_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = spawn(test_config(dir.path())).await;
    let client = Client::new(&running.base_url, &admin_key(dir.path()));
    let mut events = subscribe(&client, None).await;
    let (ready, _) = wait_for(&mut events, "ready", |e| e.event == "ready").await;
    assert!(!ready.id.is_empty(), "{ready:?}");

    // Another page hears of the upload, then of each stage, without asking.
    let ticket = client
        .upload("chelsea.jpg", "image/jpeg", photo("chelsea.jpg"))
        .await;
    let id = ticket.image_id.clone();
    let (done, before) = wait_for(&mut events, "done", |e| {
        e.event == "image" && e.data["id"] == id.as_str() && e.data["status"] == "done"
    })
    .await;
    let mut seen = statuses(&before, &id);
    seen.push("done".into());
    assert_eq!(
        seen.first().map(String::as_str),
        Some("pending"),
        "{seen:?}"
    );
    assert!(seen.contains(&"processing".to_owned()), "{seen:?}");
    let thumb = done.data["renditions"]["thumb"]["url"]
        .as_str()
        .expect("thumb url")
        .to_owned();
    assert!(
        thumb.starts_with(&format!("/api/images/{id}/thumb?v=")),
        "{thumb}"
    );
    assert!(done.data["stages"]["resized"].is_string(), "{}", done.data);
    assert!(done.data["stages"]["tagged"].is_string(), "{}", done.data);
    assert_eq!(
        done.data["links"]["original"],
        format!("/api/images/{id}/original")
    );

    // The list gives the same stable paths on every load.
    let (_, first) = client.get_json("/api/images").await;
    let (_, second) = client.get_json("/api/images").await;
    assert_eq!(
        first["items"][0]["renditions"],
        second["items"][0]["renditions"]
    );
    // The thumbnail is kept by browsers for good, and revalidates to 304.
    let res = client.api(Method::GET, &thumb).send().await.expect("thumb");
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["cache-control"],
        "private, max-age=31536000, immutable"
    );
    let etag = res.headers()["etag"].to_str().expect("etag").to_owned();
    let res = client
        .api(Method::GET, &thumb)
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("thumb");
    assert_eq!(res.status(), 304);
    // The original downloads through a redirect to the store.
    let res = client
        .api(Method::GET, &format!("/api/images/{id}/original"))
        .send()
        .await
        .expect("original");
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.bytes().await.expect("body").to_vec(),
        photo("chelsea.jpg")
    );

    // An editor's tag: kept apart, found by ?tag= in any case and by ?q=.
    let res = client
        .api(Method::PATCH, &format!("/api/images/{id}"))
        .json(&json!({ "editor_tags": ["  Election 2026 ", "election 2026", "Berlin"] }))
        .send()
        .await
        .expect("patch");
    assert_eq!(res.status(), 200);
    let patched: Value = res.json().await.expect("json");
    assert_eq!(patched["editor_tags"], json!(["Election 2026", "Berlin"]));
    let model_tags = patched["tags"].clone();
    assert!(
        !model_tags.to_string().contains("Election"),
        "the model's tags are untouched: {model_tags}"
    );
    let model_tag = model_tags[0]["label"]
        .as_str()
        .expect("a model tag")
        .to_uppercase()
        .replace(' ', "%20");
    let model_tag = format!("tag={model_tag}");
    for query in [
        "tag=ELECTION%202026",
        "tag=berlin",
        "q=election",
        &model_tag,
    ] {
        let (status, page) = client.get_json(&format!("/api/images?{query}")).await;
        assert_eq!(
            (status, ids(&page)),
            (200, vec![id.clone()]),
            "{query}: {page}"
        );
    }
    let (_, facets) = client.get_json("/api/facets").await;
    assert!(
        facets["tags"].as_array().is_some_and(|t| t
            .iter()
            .any(|c| c["value"] == "Election 2026" && c["count"] == 1)),
        "{facets}"
    );
    assert!(
        facets["categories"]
            .as_array()
            .is_some_and(|t| t.iter().any(|c| c["value"] == "animal" && c["count"] == 1)),
        "{facets}"
    );
    assert_eq!(facets["status"], json!([{ "value": "done", "count": 1 }]));

    // Reprocess: back through the stages, the editor's tags kept, the model's back.
    let tagged_before = done.data["stages"]["tagged"].clone();
    let res = client
        .api(Method::POST, &format!("/api/images/{id}/reprocess"))
        .send()
        .await
        .expect("reprocess");
    assert_eq!(res.status(), 202);
    let (again, before) = wait_for(&mut events, "done again", |e| {
        e.event == "image"
            && e.data["id"] == id.as_str()
            && e.data["status"] == "done"
            && e.data["stages"]["tagged"] != tagged_before
    })
    .await;
    assert!(
        statuses(&before, &id).contains(&"pending".to_owned()),
        "{before:#?}"
    );
    assert_eq!(
        again.data["editor_tags"],
        json!(["Election 2026", "Berlin"])
    );
    assert_eq!(again.data["tags"], model_tags);
    let last_seen = again.id.clone();

    // Delete: the document, the original and the renditions go; pages hear of it.
    let res = client
        .api(Method::DELETE, &format!("/api/images/{id}"))
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), 204);
    let (gone, _) = wait_for(&mut events, "deleted", |e| e.event == "deleted").await;
    assert_eq!(gone.data["id"], id.as_str());
    assert_eq!(client.image(&id).await, None);
    for path in [
        thumb.clone(),
        format!("/api/images/{id}/preview"),
        format!("/api/images/{id}/original"),
    ] {
        let res = client
            .api(Method::GET, &path)
            .send()
            .await
            .expect("reachable");
        assert_eq!(res.status(), 404, "{path}");
    }
    let original = running
        .backends
        .store
        .head("originals", &ticket.key)
        .await
        .expect_err("the original is gone");
    assert!(original.is_not_found(), "{original:?}");
    let (_, page) = client.get_json("/api/images").await;
    assert!(ids(&page).is_empty(), "{page}");

    // Events still in flight for a deleted image (here a reprocess sent just before) never
    // bring it back, and the metadata store gives up on none of them.
    let second = client
        .upload("coffee.jpg", "image/jpeg", photo("coffee.jpg"))
        .await;
    client.wait_terminal(&second.image_id, DEADLINE).await;
    for (method, path, want) in [
        (
            Method::POST,
            format!("/api/images/{}/reprocess", second.image_id),
            202,
        ),
        (
            Method::DELETE,
            format!("/api/images/{}", second.image_id),
            204,
        ),
    ] {
        let res = client.api(method, &path).send().await.expect("reachable");
        assert_eq!(res.status(), want, "{path}");
    }
    common::wait_idle(&running, DEADLINE).await;
    assert_eq!(
        client.image(&second.image_id).await,
        None,
        "deleted stays deleted"
    );
    let dead = running
        .backends
        .bus
        .dead_letters("metadata-store", 10)
        .await
        .expect("dead letters");
    assert!(dead.is_empty(), "{dead:?}");

    // A page that was away while the server restarted catches up from its last event id.
    running.stop().await.expect("stop");
    let running = spawn(test_config(dir.path())).await;
    let client = Client::new(&running.base_url, &admin_key(dir.path()));
    let mut resumed = subscribe(&client, Some(&last_seen)).await;
    let (replayed, _) = wait_for(&mut resumed, "the deletion, replayed", |e| {
        e.event == "deleted"
    })
    .await;
    assert_eq!(replayed.data["id"], id.as_str());
    running.stop().await.expect("stop");
}

/// A stage's failed attempt shows on the image (what went wrong, which attempt) while it is
/// retried; the final failure says in words a person understands what is wrong with the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_show_on_the_image_and_failures_say_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.retry.base_delay_ms = 500;
    let running = spawn(config).await;
    let client = Client::new(&running.base_url, &admin_key(dir.path()));
    let mut events = subscribe(&client, None).await;
    let china = photo("china.jpg");
    let ticket = client
        .upload("cut.jpg", "image/jpeg", china[..china.len() / 3].to_vec())
        .await;
    let id = ticket.image_id.clone();
    let (retrying, _) = wait_for(&mut events, "retrying", |e| {
        e.event == "image" && e.data["id"] == id.as_str() && e.data["retrying"].is_object()
    })
    .await;
    assert_eq!(
        retrying.data["retrying"]["stage"], "resizer",
        "{}",
        retrying.data
    );
    assert_eq!(retrying.data["retrying"]["attempt"], 1, "{}", retrying.data);
    assert_eq!(retrying.data["status"], "pending");
    let doc = client.wait_terminal(&id, DEADLINE).await;
    assert_eq!(doc["status"], "failed");
    assert!(doc.get("retrying").is_none(), "{doc}");
    let reason = doc["error"]["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("the file is cut off"), "{doc}");
    let (_, facets) = client.get_json("/api/facets").await;
    assert_eq!(facets["status"], json!([{ "value": "failed", "count": 1 }]));
    running.stop().await.expect("stop");
}

/// Every error under /api/ is JSON with the right status; a CORS preflight from an allowed
/// origin is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_json_and_preflights_are_answered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.access.cors_origins = vec!["https://desk.example".to_owned()];
    let running = spawn(config).await;
    let client = Client::new(&running.base_url, &admin_key(dir.path()));
    let cases: Vec<(Method, &str, Option<Value>, u16)> = vec![
        (Method::GET, "/api/images?limit=0", None, 400),
        (Method::GET, "/api/images?limit=abc", None, 400),
        (Method::GET, "/api/images?limit=100000", None, 400),
        (Method::GET, "/api/images?status=lost", None, 400),
        (Method::GET, "/api/images?month=May", None, 400),
        (Method::GET, "/api/images?cursor=garbage", None, 400),
        (
            Method::POST,
            "/api/uploads",
            Some(json!({ "filename": "x.jpg" })),
            400,
        ),
        (
            Method::POST,
            "/api/uploads",
            Some(json!({ "filename": "x.jpg", "content_type": "image/jpeg", "size": "big" })),
            400,
        ),
        (
            Method::PATCH,
            "/api/images/nope",
            Some(json!({ "tags": [] })),
            400,
        ),
        (
            Method::PATCH,
            "/api/images/nope",
            Some(json!({ "editor_tags": ["x"] })),
            404,
        ),
        (Method::PUT, "/api/images", None, 405),
        (Method::GET, "/api/nothing/here", None, 404),
        (Method::GET, "/api/images/", None, 404),
        (Method::GET, "/api/", None, 404),
    ];
    let mut wrong = Vec::new();
    for (method, path, body, want) in cases {
        let mut req = client.api(method.clone(), path);
        if let Some(body) = &body {
            req = req.json(body);
        }
        let res = req.send().await.expect("reachable");
        let status = res.status().as_u16();
        let kind = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = res.text().await.unwrap_or_default();
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status != want || !kind.starts_with("application/json") || !json["error"].is_string() {
            wrong.push(format!("{method} {path}: {status} {kind} {text}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    let res = client
        .http
        .request(Method::OPTIONS, format!("{}/api/uploads", running.base_url))
        .header("origin", "https://desk.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .expect("preflight");
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://desk.example"
    );
    let res = client
        .http
        .request(Method::OPTIONS, format!("{}/api/uploads", running.base_url))
        .header("origin", "https://elsewhere.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("preflight");
    assert!(res.headers().get("access-control-allow-origin").is_none());
    running.stop().await.expect("stop");
}
