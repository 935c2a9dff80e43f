//! After the load: malformed events published beside the pipeline, and the checks and figures
//! of the report.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

use imgpipe_contract::bus::{Message, headers};
use imgpipe_contract::config::Config;
use imgpipe_contract::event::Topic;
use serde_json::Value;

use crate::clients::{Accepted, Log};
use crate::common::Client;
use crate::stack::{Mode, Stack};

const QUEUES: [&str; 3] = ["resizer", "recognizer", "metadata-store"];
const DRAIN: Duration = Duration::from_secs(180);

/// What was done to the pipeline during the run.
pub struct Faults {
    /// Deliveries of malformed events (one per queue each reaches).
    pub malformed: usize,
    pub killed: String,
    pub cut: bool,
}

/// Events no producer of ours would send: unparseable, the wrong shape, an unknown schema.
pub async fn publish_malformed(config: &Config) -> Result<usize, Box<dyn std::error::Error>> {
    let bus = imgpipe::backends::attach_bus(config).await?;
    let junk = |topic: &str, payload: &[u8]| -> Result<Message, serde_json::Error> {
        let mut message = Message::json(topic, &Value::Null)?;
        message.payload = payload.to_vec();
        Ok(message)
    };
    let messages = [
        junk(Topic::OBJECT_CREATED, b"{not json")?,
        junk(
            Topic::OBJECT_CREATED,
            br#"{"Records":[{"eventName":"ObjectCreated:Put"}]}"#,
        )?,
        junk(Topic::RENDITIONS_READY, b"[]")?,
        junk(Topic::TAGS_READY, br#"{"image_id":"x"}"#)?.with_header(headers::SCHEMA_VERSION, "99"),
    ];
    // Object-created reaches the resizer and the metadata store, renditions-ready the recognizer
    // and the metadata store, tags-ready the metadata store.
    let count = 2 + 2 + 2 + 1;
    for message in messages {
        bus.publish(message).await?;
    }
    Ok(count)
}

pub struct Report {
    mode: Mode,
    clients: usize,
    elapsed: Duration,
    accepted: Vec<Accepted>,
    errors: BTreeMap<String, u64>,
    faults: Faults,
    dead_letters: BTreeMap<String, usize>,
    unclaimed: usize,
    failures: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

pub async fn check(
    stack: &mut Stack,
    mode: Mode,
    clients: usize,
    elapsed: Duration,
    logs: Vec<Log>,
    faults: Faults,
) -> Report {
    let mut report = Report {
        mode,
        clients,
        elapsed,
        accepted: Vec::new(),
        errors: BTreeMap::new(),
        faults,
        dead_letters: BTreeMap::new(),
        unclaimed: 0,
        failures: Vec::new(),
    };
    for log in logs {
        report.accepted.extend(log.accepted);
        for (kind, n) in log.errors {
            *report.errors.entry(kind).or_default() += n;
        }
    }
    if let Err(e) = drained(&stack.bus).await {
        report.failures.push(e);
    }
    let query = Client::new(&stack.query, &stack.admin_key);
    match all_documents(&query).await {
        Ok(docs) => check_documents(&mut report, &docs),
        Err(e) => report.failures.push(e),
    }
    report.dead_letters = dead_letters(&stack.bus).await;
    let hostile = report.accepted.iter().filter(|a| a.hostile).count();
    let dead: usize = report.dead_letters.values().sum();
    if dead != hostile + report.faults.malformed {
        report.failures.push(format!(
            "{dead} dead letters, expected one per hostile upload ({hostile}) and per malformed \
             delivery ({})",
            report.faults.malformed
        ));
    }
    let stopped: Vec<String> = stack
        .stopped()
        .into_iter()
        .filter(|name| *name != report.faults.killed)
        .collect();
    if !stopped.is_empty() {
        report
            .failures
            .push(format!("processes stopped: {stopped:?}"));
    }
    report
}

fn check_documents(report: &mut Report, docs: &BTreeMap<String, Value>) {
    let mut seen = BTreeSet::new();
    for upload in &report.accepted {
        if !seen.insert(upload.image_id.clone()) {
            report
                .failures
                .push(format!("{} accepted twice", upload.image_id));
        }
        let Some(doc) = docs.get(&upload.image_id) else {
            report
                .failures
                .push(format!("{}: no document", upload.image_id));
            continue;
        };
        let status = doc["status"].as_str().unwrap_or("");
        let reason = doc["error"]["reason"].as_str().unwrap_or("");
        let expected = if upload.hostile { "failed" } else { "done" };
        if status != expected || (upload.hostile && reason.is_empty()) {
            report.failures.push(format!(
                "{} ({}): {status} {reason:?}, expected {expected}",
                upload.image_id,
                if upload.hostile { "hostile" } else { "photo" }
            ));
        }
        if upload.latency.is_none() {
            report
                .failures
                .push(format!("{}: the client saw no end", upload.image_id));
        } else if upload.status != status || upload.reason != reason {
            // A terminal state must be final: what the client saw is what stays.
            report.failures.push(format!(
                "{}: the client saw {} {:?}, the document now says {status} {reason:?}",
                upload.image_id, upload.status, upload.reason
            ));
        }
    }
    // Documents of uploads whose PUT answer was lost (a connection cut by the kill): not
    // counted as accepted, but they must have ended too.
    for (id, doc) in docs {
        if !seen.contains(id) {
            report.unclaimed += 1;
            if !matches!(doc["status"].as_str(), Some("done" | "failed")) {
                report
                    .failures
                    .push(format!("{id} (answer lost): {}", doc["status"]));
            }
        }
    }
}

/// Waits until every pipeline queue is empty.
async fn drained(config: &Config) -> Result<(), String> {
    let bus = imgpipe::backends::attach_bus(config)
        .await
        .map_err(|e| format!("bus: {e}"))?;
    let deadline = Instant::now() + DRAIN;
    loop {
        let mut depth = 0;
        for queue in QUEUES {
            depth += bus.queue_depth(queue).await.map_err(|e| e.to_string())?;
        }
        if depth == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{depth} messages still queued after {DRAIN:?}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn dead_letters(config: &Config) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    if let Ok(bus) = imgpipe::backends::attach_bus(config).await {
        for queue in QUEUES {
            let n = bus
                .dead_letters(queue, 100_000)
                .await
                .map_or(0, |d| d.len());
            counts.insert(queue.to_owned(), n);
        }
    }
    counts
}

/// Every document the query API lists, following the keyset cursor.
async fn all_documents(client: &Client) -> Result<BTreeMap<String, Value>, String> {
    let mut docs = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/images?limit=100&cursor={c}"),
            None => "/api/images?limit=100".to_owned(),
        };
        let (status, page) = client.get_json(&path).await;
        if status != 200 {
            return Err(format!("GET {path}: {status}"));
        }
        for item in page["items"].as_array().into_iter().flatten() {
            let id = item["id"].as_str().unwrap_or("").to_owned();
            if docs.insert(id.clone(), item.clone()).is_some() {
                return Err(format!("{id} listed twice"));
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(docs),
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let photos: Vec<&Accepted> = self.accepted.iter().filter(|a| !a.hostile).collect();
        let hostile = self.accepted.len() - photos.len();
        let mut latencies: Vec<Duration> = photos.iter().filter_map(|a| a.latency).collect();
        latencies.sort();
        let secs = self.elapsed.as_secs_f64();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        writeln!(
            f,
            "== {:?}: {} clients for {secs:.0} s ==",
            self.mode, self.clients
        )?;
        writeln!(
            f,
            "accepted uploads  {} ({} photos, {hostile} hostile), {:.1} uploads/s",
            self.accepted.len(),
            photos.len(),
            self.accepted.len() as f64 / secs
        )?;
        writeln!(
            f,
            "upload to done    p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms (photos)",
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.9)),
            ms(percentile(&latencies, 0.99)),
            ms(percentile(&latencies, 1.0))
        )?;
        writeln!(f, "client errors     {:?}", self.errors)?;
        writeln!(
            f,
            "faults            {} malformed event deliveries, SIGKILL {}, broker cut: {}",
            self.faults.malformed, self.faults.killed, self.faults.cut
        )?;
        writeln!(f, "dead letters      {:?}", self.dead_letters)?;
        writeln!(
            f,
            "answers lost      {} documents of uploads whose PUT answer was lost",
            self.unclaimed
        )?;
        if self.failures.is_empty() {
            writeln!(f, "checks            passed")
        } else {
            writeln!(f, "checks            FAILED ({}):", self.failures.len())?;
            for failure in self.failures.iter().take(20) {
                writeln!(f, "  {failure}")?;
            }
            Ok(())
        }
    }
}
