//! Closed-loop clients: each uploads one file the way a browser does (ask for a URL, PUT the
//! bytes), waits until its image is `done` or `failed`, and starts the next, until the run ends.
//! Errors (refused requests, connections lost while a process restarts) are counted by kind and
//! never stop a client.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Client, Ticket};
use crate::hostile::Hostile;

/// Every this many uploads of a client, one is hostile.
const HOSTILE_EVERY: usize = 25;
const POLL: Duration = Duration::from_millis(100);

/// A real photo to upload.
pub struct Photo {
    pub name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// What the clients share.
pub struct Plan {
    /// Where uploads are asked for.
    pub api: String,
    /// Where images are read (the metadata store; the same process in embedded mode).
    pub query: String,
    pub clients: usize,
    pub photos: Vec<Photo>,
    pub hostile: Vec<Hostile>,
    pub end: Instant,
    /// How long a client waits for one image before calling it stuck.
    pub max_wait: Duration,
}

/// One accepted upload and how it ended.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub image_id: String,
    pub hostile: bool,
    /// From the PUT's answer to the first poll that saw a terminal state.
    pub latency: Option<Duration>,
    pub status: String,
    pub reason: String,
}

/// What one client saw.
#[derive(Debug, Default)]
pub struct Log {
    pub accepted: Vec<Accepted>,
    pub errors: BTreeMap<String, u64>,
}

/// Runs one client with its own key until `plan.end`.
pub async fn run(n: usize, key: String, plan: Arc<Plan>) -> Log {
    let client = Client::new(&plan.api, &key);
    let reader = Client::new(&plan.query, &key);
    let mut log = Log::default();
    let mut i = 0usize;
    while Instant::now() < plan.end {
        i += 1;
        // Spread over the clients: about one upload in HOSTILE_EVERY overall, from the start.
        let hostile = (i * plan.clients + n).is_multiple_of(HOSTILE_EVERY);
        let (name, content_type, bytes) = if hostile {
            let h = &plan.hostile[(i / HOSTILE_EVERY + n) % plan.hostile.len()];
            (h.name.to_owned(), h.content_type, h.bytes.clone())
        } else {
            let p = &plan.photos[(i * 7 + n) % plan.photos.len()];
            (p.name.clone(), p.content_type, p.bytes.clone())
        };
        let name = format!("c{n}-{i}-{name}");
        match upload(&client, &name, content_type, bytes).await {
            Ok(ticket) => {
                let started = Instant::now();
                let (status, reason, latency) = wait_terminal(&reader, &ticket, &plan).await;
                log.accepted.push(Accepted {
                    image_id: ticket.image_id,
                    hostile,
                    latency: latency.then(|| started.elapsed()),
                    status,
                    reason,
                });
            }
            Err(kind) => {
                *log.errors.entry(kind).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    log
}

/// Asks for a URL and PUTs the bytes; an error names the step and what went wrong.
async fn upload(
    client: &Client,
    name: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> Result<Ticket, String> {
    let body =
        serde_json::json!({ "filename": name, "content_type": content_type, "size": bytes.len() });
    let res = client
        .api(reqwest::Method::POST, "/api/uploads")
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("POST /api/uploads: {}", kind_of(&e)))?;
    if res.status() != 201 {
        return Err(format!("POST /api/uploads: {}", res.status()));
    }
    let ticket: Ticket = res
        .json()
        .await
        .map_err(|e| format!("POST /api/uploads: {}", kind_of(&e)))?;
    let method = ticket
        .method
        .parse()
        .map_err(|_| "PUT: bad method".to_owned())?;
    let mut put = client.http.request(method, &ticket.url);
    for (k, v) in &ticket.headers {
        put = put.header(k, v);
    }
    let res = put
        .body(bytes)
        .send()
        .await
        .map_err(|e| format!("PUT: {}", kind_of(&e)))?;
    match res.status().as_u16() {
        200 => Ok(ticket),
        status => Err(format!("PUT: {status}")),
    }
}

/// Polls the image until it is terminal: (status, error reason, reached a terminal state).
async fn wait_terminal(reader: &Client, ticket: &Ticket, plan: &Plan) -> (String, String, bool) {
    let deadline = Instant::now() + plan.max_wait;
    let mut last = "unseen".to_owned();
    while Instant::now() < deadline {
        if let Some(doc) = poll(reader, &ticket.image_id).await {
            let status = doc["status"].as_str().unwrap_or("").to_owned();
            if status == "done" || status == "failed" {
                let reason = doc["error"]["reason"].as_str().unwrap_or("").to_owned();
                return (status, reason, true);
            }
            last = status;
        }
        tokio::time::sleep(POLL).await;
    }
    (last, String::new(), false)
}

/// One GET of the image; a refused connection (process restarting) or a 404 (event not yet in)
/// is simply "not yet".
async fn poll(reader: &Client, id: &str) -> Option<Value> {
    let res = reader
        .api(reqwest::Method::GET, &format!("/api/images/{id}"))
        .send()
        .await
        .ok()?;
    if !res.status().is_success() {
        return None;
    }
    res.json().await.ok()
}

fn kind_of(e: &reqwest::Error) -> &'static str {
    if e.is_connect() {
        "connection refused"
    } else if e.is_timeout() {
        "timeout"
    } else if e.is_decode() {
        "bad response body"
    } else {
        "connection lost"
    }
}
