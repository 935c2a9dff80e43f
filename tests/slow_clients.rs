//! Slow and idle clients against the real server (`imgpipe up`'s listener): a client that never
//! finishes its headers or its body is cut off, a flood of idle connections cannot take more than
//! `server.max_connections` slots (later clients wait, then get served), and a stop is bounded
//! even with such clients connected.

mod common;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::{admin_key, spawn, test_config};

/// Reads until the server closes the connection; what it sent.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> String {
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, stream.read_to_end(&mut got)).await;
    assert!(
        read.is_ok(),
        "the server must close the connection within {within:?}"
    );
    String::from_utf8_lossy(&got).into_owned()
}

async fn healthz(addr: std::net::SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    read_to_close(&mut stream, Duration::from_secs(10)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_cannot_exhaust_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.server.header_timeout_secs = 1;
    config.server.body_idle_timeout_secs = 1;
    config.server.max_connections = 8;
    let running = spawn(config).await;
    let addr = running.addr;

    // Headers that never end: the connection is closed after the header timeout.
    let mut slowloris = TcpStream::connect(addr).await.expect("connect");
    slowloris
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        .await
        .expect("write");
    let started = Instant::now();
    let answer = read_to_close(&mut slowloris, Duration::from_secs(5)).await;
    assert!(!answer.contains("200 OK"), "{answer}");
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "not before the timeout"
    );

    // A body that stops halfway: 408 after the idle timeout, not a connection held forever.
    let key = admin_key(dir.path());
    let mut stalled = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /api/uploads HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"filename\": "
    );
    stalled.write_all(head.as_bytes()).await.expect("write");
    let answer = read_to_close(&mut stalled, Duration::from_secs(8)).await;
    assert!(
        answer.starts_with("HTTP/1.1 408") || answer.starts_with("HTTP/1.1 400"),
        "a stalled body is refused: {answer}"
    );

    // Eight idle connections take every slot; a ninth client waits for one, then is served.
    let mut idle = Vec::new();
    for _ in 0..8 {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .expect("write");
        idle.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let answer = healthz(addr).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "served only once a slot was free ({:?})",
        started.elapsed()
    );

    // A stop with a client mid-upload still ends in bounded time.
    let mut trickle = TcpStream::connect(addr).await.expect("connect");
    trickle
        .write_all(b"PUT /originals/x HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\nabc")
        .await
        .expect("write");
    let stopping = Instant::now();
    running.stop().await.expect("stops");
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "stop took {:?}",
        stopping.elapsed()
    );
    drop(idle);
}
