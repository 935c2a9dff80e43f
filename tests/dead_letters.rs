//! A poison message on the embedded pipeline: a file that is not an image is retried up to
//! `retry.max_attempts`, fails its image with a reason, lands in the resizer's dead letters, is
//! listed by `imgpipe dlq list` (run beside the pipeline), and, once replayed, is delivered again
//! as a fresh first attempt: the file being as bad as before, it goes through all its attempts
//! again, is dead-lettered afresh, and leaves the document as it was.

mod common;

use std::time::{Duration, Instant};

use common::{Client, admin_key, spawn, test_config};
use imgpipe::dlq::{self, Summary};
use imgpipe_contract::bus::{Bus, DeadLetter};
use imgpipe_contract::event::Topic;
use imgpipe_runtime::metrics::Metrics;
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(20);

const MAX_ATTEMPTS: u32 = 3;

/// How many resizer handlings ended with `outcome` ("retry", "dead") so far.
fn resizer(metrics: &Metrics, outcome: &str) -> u64 {
    let line = format!("imgpipe_messages_total{{outcome=\"{outcome}\",stage=\"resizer\"}}");
    metrics
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(&line))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done().await {
        assert!(Instant::now() < deadline, "{what} within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The dead letters of all pipeline queues, as `imgpipe dlq list` reads them.
async fn all_dead(bus: &dyn Bus) -> Vec<DeadLetter> {
    dlq::list(bus, &dlq::pipeline_queues(), 10)
        .await
        .expect("dead letters")
}

/// Runs the real binary's `dlq <args>` on `data_dir`: whether it succeeded, stdout, stderr.
async fn cli(data_dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .arg("dlq")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("IMGPIPE_CONFIG")
        .output()
        .await
        .expect("imgpipe runs");
    (
        out.status.success(),
        String::from_utf8(out.stdout).expect("utf-8"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the real binary's `dlq list` on the pipeline's data dir: its stdout, and its stderr.
async fn cli_list(data_dir: &std::path::Path, extra: &[&str]) -> (String, String) {
    let args: Vec<&str> = ["list"].iter().chain(extra).copied().collect();
    let (success, stdout, stderr) = cli(data_dir, &args).await;
    assert!(success, "dlq list failed: {stderr}");
    (stdout, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_upload_is_dead_lettered_listed_and_replayed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.retry.max_attempts = MAX_ATTEMPTS;
    config.retry.base_delay_ms = 20;
    config.retry.max_delay_ms = 40;
    let running = spawn(config.clone()).await;
    let client = Client::new(&running.base_url, &admin_key(dir.path()));
    let metrics = running.backends.metrics.clone();

    let ticket = client
        .upload(
            "notes.jpg",
            "image/jpeg",
            b"these are not the pixels you are looking for".to_vec(),
        )
        .await;
    let doc = client.wait_terminal(&ticket.image_id, DEADLINE).await;
    assert_eq!(doc["status"], "failed", "{doc}");
    assert_eq!(doc["error"]["stage"], "resizer");
    let reason = doc["error"]["reason"].as_str().expect("reason").to_owned();
    assert!(!reason.is_empty(), "{doc}");
    assert_eq!(doc["error"]["attempts"], MAX_ATTEMPTS, "{doc}");
    let (_, failed) = client.get_json("/api/images?status=failed").await;
    let failed: Vec<&Value> = failed["items"].as_array().expect("items").iter().collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["id"].as_str(), Some(ticket.image_id.as_str()));
    assert_eq!(failed[0]["error"]["reason"].as_str(), Some(reason.as_str()));

    // Beside the running pipeline, the way the CLI opens it.
    let bus = dlq::open_bus(&config).await.expect("attach to the queue");
    wait_for("one dead letter", async || {
        all_dead(bus.as_ref()).await.len() == 1
    })
    .await;
    let dead = all_dead(bus.as_ref()).await;
    let id = dead[0].message.id.clone();
    let expected = Summary {
        queue: "resizer".to_owned(),
        message_id: id.clone(),
        topic: Topic::OBJECT_CREATED.to_owned(),
        attempts: MAX_ATTEMPTS,
        reason: reason.clone(),
        image_id: Some(ticket.image_id.clone()),
        key: Some(ticket.key.clone()),
    };
    assert_eq!(Summary::of(&dead[0]), expected);
    let retries = u64::from(MAX_ATTEMPTS - 1);
    assert_eq!(
        (resizer(&metrics, "retry"), resizer(&metrics, "dead")),
        (retries, 1)
    );

    // The real command, in both formats.
    let (json, _) = cli_list(dir.path(), &["--json"]).await;
    let lines: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(
        lines,
        vec![serde_json::to_value(&expected).expect("json")],
        "{json}"
    );
    let (text, stderr) = cli_list(dir.path(), &["--queue", "resizer"]).await;
    assert_eq!(text, format!("{}\n", expected.line()));
    assert!(!stderr.contains("no dead letters"), "{stderr}");
    // An empty list says so, on stderr: stdout stays the (empty) listing.
    for format in [&[][..], &["--json"]] {
        let args: Vec<&str> = ["--queue", "recognizer"]
            .iter()
            .chain(format)
            .copied()
            .collect();
        let (listed, stderr) = cli_list(dir.path(), &args).await;
        assert_eq!(listed, "", "{format:?}");
        assert!(
            stderr.contains("no dead letters in recognizer"),
            "{format:?}: {stderr}"
        );
    }

    // Replayed: delivered again with its attempts counted from 1 (so retried as often as the
    // first time round, not dead-lettered at once), given up on again, and the document is
    // unchanged.
    let moved = dlq::replay(bus.as_ref(), "resizer", 10)
        .await
        .expect("replay");
    assert_eq!(moved, 1);
    wait_for("the replayed message handled again", async || {
        resizer(&metrics, "dead") == 2
    })
    .await;
    assert_eq!(
        resizer(&metrics, "retry"),
        2 * retries,
        "a fresh attempt count"
    );
    let dead = all_dead(bus.as_ref()).await;
    assert_eq!(dead.len(), 1, "dead again, once");
    assert_eq!(
        Summary::of(&dead[0]),
        expected,
        "the same message, dead again"
    );
    let after = client.image(&ticket.image_id).await.expect("document");
    assert_eq!(after["status"], "failed");
    assert_eq!(after["error"], doc["error"]);

    drop(bus);
    running.stop().await.expect("clean stop");
}

/// A queue that is not one of the pipeline's is an error naming the real ones, for `list` and
/// `replay` alike, found before the bus is even opened; nothing goes to stdout.
#[tokio::test]
async fn an_unknown_queue_is_an_error_naming_the_known_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        &["list", "--queue", "bogus"][..],
        &["list", "--queue", "bogus", "--json"],
        &["replay", "--queue", "bogus"],
    ] {
        let (success, stdout, stderr) = cli(dir.path(), args).await;
        assert!(!success, "{args:?} succeeded: {stdout}");
        assert_eq!(stdout, "", "{args:?}");
        assert!(
            stderr.contains("unknown queue \"bogus\""),
            "{args:?}: {stderr}"
        );
        for queue in dlq::pipeline_queues() {
            assert!(
                stderr.contains(&queue),
                "{args:?}: {stderr} does not name {queue}"
            );
        }
    }
}

/// A failure reported for an image nobody knows (its upload never reached the metadata store)
/// is retried in case the upload is only late, then dead-lettered once, and that is the end: no
/// new failure report is published about it, so the two cannot chase each other forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_for_an_unknown_image_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.retry.max_attempts = MAX_ATTEMPTS;
    let running = spawn(config).await;
    let bus = running.backends.bus.clone();
    let failed = imgpipe_contract::event::StageFailed {
        image_id: "no-such-image".to_owned(),
        stage: "resizer".to_owned(),
        reason: "test".to_owned(),
        attempts: 1,
    };
    let message = imgpipe_contract::bus::Message::json(Topic::STAGE_FAILED, &failed)
        .expect("json")
        .with_header(imgpipe_contract::bus::headers::IMAGE_ID, "no-such-image");
    bus.publish(message).await.expect("publish");

    let dead_in_store = async || {
        bus.dead_letters("metadata-store", 10)
            .await
            .expect("dead letters")
            .len()
    };
    wait_for("the failure report dead-lettered", async || {
        dead_in_store().await >= 1
    })
    .await;
    // Were another report published, it would go through its attempts (tens of milliseconds
    // with this config's backoff) and be dead-lettered in turn.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(dead_in_store().await, 1, "one dead letter, no chase");
    assert_eq!(
        bus.queue_depth("metadata-store").await.expect("depth"),
        0,
        "nothing left in the queue"
    );
    running.stop().await.expect("stop");
}
