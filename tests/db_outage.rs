//! A metadata database outage in the middle of a batch: PostgreSQL behind a TCP proxy that the
//! test cuts (every open connection dropped, new ones closed at once) for `IMGPIPE_OUTAGE_SECS`
//! (default 300: the five minutes operators plan for), then restores. Every image must end `done`
//! and nothing may be dead-lettered: an outage spends no message's attempts.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use common::engines::fresh_postgres;
use common::{Client, admin_key, photo, spawn, test_config, wait_idle};

const PHOTOS: [&str; 12] = [
    "chelsea.jpg",
    "china.jpg",
    "coffee.jpg",
    "flower.jpg",
    "flower2.jpg",
    "rocket.jpg",
    "astronaut.png",
    "motorcycle_left.png",
    "page.png",
    "pil_sample_rgb.jpg",
    "hopper.jpg",
    "coffee.png",
];

/// A TCP proxy to PostgreSQL that can play dead.
struct Proxy {
    addr: SocketAddr,
    down: watch::Sender<bool>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let (down, watching) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut down = watching.clone();
                if *down.borrow() {
                    continue; // dropped: the database "refuses"
                }
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = down.wait_for(|down| *down) => {}
                    }
                });
            }
        });
        Proxy { addr, down }
    }

    fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }
}

fn outage() -> Duration {
    let secs = std::env::var("IMGPIPE_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    Duration::from_secs(secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_mid_batch_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    let mut metadata = fresh_postgres();
    let (before, host_port, after) = split_authority(&metadata.url);
    let target = tokio::net::lookup_host(host_port)
        .await
        .expect("resolve PostgreSQL")
        .next()
        .expect("PostgreSQL address");
    let proxy = Proxy::start(target).await;
    metadata.url = format!("{before}{}{after}", proxy.addr);
    config.metadata = metadata;
    // The test's retry budget (3 attempts, 50..500 ms) would be spent in about a second.
    let running = spawn(config).await;
    let client = Client::new(&running.base_url, &admin_key(dir.path()));

    let mut ids = Vec::new();
    for name in PHOTOS {
        let ticket = client.upload(name, content_type(name), photo(name)).await;
        ids.push(ticket.image_id);
    }
    let mut unfinished = 0;
    for id in &ids {
        let status = client.image(id).await.map(|d| d["status"].clone());
        if status.as_ref().and_then(|s| s.as_str()) != Some("done") {
            unfinished += 1;
        }
    }
    proxy.set_down(true);
    assert!(unfinished > 0, "the outage must begin mid-batch");
    let outage = outage();
    eprintln!(
        "database down for {outage:?} with {unfinished} of {} images unfinished",
        ids.len()
    );
    tokio::time::sleep(outage).await;
    proxy.set_down(false);

    let restored = Instant::now();
    for id in &ids {
        let doc = client.wait_terminal(id, Duration::from_secs(180)).await;
        assert_eq!(doc["status"], "done", "{id}: {doc}");
    }
    wait_idle(&running, Duration::from_secs(60)).await;
    eprintln!(
        "all done {:?} after the database came back",
        restored.elapsed()
    );
    for queue in ["resizer", "recognizer", "metadata-store"] {
        let dead = running
            .backends
            .bus
            .dead_letters(queue, 10)
            .await
            .expect("dead letters");
        assert!(
            dead.is_empty(),
            "{queue}: {:?}",
            dead.first().map(|d| &d.reason)
        );
    }
    running.stop().await.expect("stops");
}

/// `postgres://user@host:port/db` as (`postgres://user@`, `host:port`, `/db`).
fn split_authority(url: &str) -> (&str, &str, &str) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    let host = url[start..end].rfind('@').map_or(start, |i| start + i + 1);
    (&url[..host], &url[host..end], &url[end..])
}

fn content_type(name: &str) -> &'static str {
    if name.ends_with(".png") {
        "image/png"
    } else {
        "image/jpeg"
    }
}
