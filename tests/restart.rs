//! Restart safety: the real `imgpipe up` process is killed with SIGKILL in the middle of a batch
//! and started again on the same data directory. Every image must reach a terminal state, each
//! in exactly one document. And a graceful stop in the middle of a batch lets the work in flight
//! finish (the embedded S3 endpoint it reads and writes stays up until the workers are done), so
//! it spends no attempt.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Client, admin_key, photo, repo_root, spawn, test_config, wait_idle};

/// Starts the binary on a free port and returns it with the base URL it printed.
fn start(data_dir: &Path) -> (Child, String) {
    let root = repo_root();
    let mut child = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .current_dir(&root)
        .env("IMGPIPE_RETRY__BASE_DELAY_MS", "50")
        .env("IMGPIPE_LOG__FILTER", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("imgpipe binary starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("imgpipe printed its address")
            .expect("utf-8");
        if let Some(url) = line.strip_prefix("imgpipe is up: open ") {
            break url.trim_end_matches('/').to_owned();
        }
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_batch_every_image_finishes_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut first, base) = start(dir.path());
    // Made at the first start; the second finds keys in the store and makes none.
    let key = admin_key(dir.path());
    let client = Client::new(&base, &key);

    let files = [
        "china.jpg",
        "flower.jpg",
        "chelsea.jpg",
        "coffee.jpg",
        "rocket.jpg",
        "hopper.jpg",
    ];
    let mut ids = Vec::new();
    for round in 0..4 {
        for name in files {
            ids.push(
                client
                    .upload(&format!("{round}-{name}"), "image/jpeg", photo(name))
                    .await
                    .image_id,
            );
        }
    }
    let (_, page) = client.get_json("/api/images?status=done&limit=200").await;
    let done_before_kill = page["items"].as_array().map_or(0, Vec::len);
    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");
    assert!(
        done_before_kill < ids.len(),
        "the kill came after the batch finished: nothing was tested"
    );

    let (mut second, base) = start(dir.path());
    assert_eq!(
        admin_key(dir.path()),
        key,
        "the first key is kept across restarts"
    );
    let client = Client::new(&base, &key);
    let deadline = Instant::now() + Duration::from_secs(180);
    for id in &ids {
        let left = deadline.saturating_duration_since(Instant::now());
        let doc = client.wait_terminal(id, left).await;
        assert_eq!(doc["status"], "done", "{doc}");
        assert_eq!(doc["tags"].as_array().map(Vec::len), Some(5), "{doc}");
    }
    let (_, page) = client.get_json("/api/images?limit=200").await;
    let mut listed: Vec<String> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|d| d["id"].as_str().map(str::to_owned))
        .collect();
    listed.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(listed, expected, "exactly one document per uploaded image");
    second.kill().expect("stop");
    let _ = second.wait();
    eprintln!(
        "killed with {done_before_kill}/{} done; all {} finished after restart",
        ids.len(),
        ids.len()
    );
}

/// Sum of one outcome's message counts over every stage, from the Prometheus text.
fn outcomes(metrics: &str, outcome: &str) -> u64 {
    let prefix = format!("imgpipe_messages_total{{outcome=\"{outcome}\"");
    metrics
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_mid_batch_lets_work_in_flight_finish() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = test_config(dir.path());
    let running = spawn(config.clone()).await;
    let client = Client::new(&running.base_url, &admin_key(dir.path()));
    let metrics = running.backends.metrics.clone();
    let names = [
        "chelsea.jpg",
        "china.jpg",
        "coffee.jpg",
        "flower.jpg",
        "rocket.jpg",
        "motorcycle_left.png",
    ];
    let mut ids = Vec::new();
    for name in names {
        let kind = if name.ends_with(".png") {
            "image/png"
        } else {
            "image/jpeg"
        };
        ids.push(client.upload(name, kind, photo(name)).await.image_id);
    }
    // Stop while the resizer (which reads originals from and writes renditions to the embedded
    // S3 endpoint on the same listener) is at work.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !metrics
        .render()
        .lines()
        .any(|l| l.starts_with("imgpipe_in_flight{stage=\"resizer\"}") && !l.ends_with(" 0"))
    {
        assert!(Instant::now() < deadline, "the resizer never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    running.stop().await.expect("stops");
    let text = metrics.render();
    assert_eq!(
        outcomes(&text, "retry"),
        0,
        "a stop cost an attempt:\n{text}"
    );
    assert_eq!(outcomes(&text, "dead"), 0, "{text}");

    // What was not started is still queued, and finishes after a start on the same data.
    let running = spawn(config).await;
    let client = Client::new(&running.base_url, &admin_key(dir.path()));
    for id in &ids {
        let doc = client.wait_terminal(id, Duration::from_secs(120)).await;
        assert_eq!(doc["status"], "done", "{doc}");
    }
    wait_idle(&running, Duration::from_secs(30)).await;
    running.stop().await.expect("stops");
}
