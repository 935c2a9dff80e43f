//! Slow clients: an upload body must be complete by its presigned URL's expiry and must not
//! pause for long; one that is too slow fails with RequestTimeout and stores nothing.

use std::time::{Duration, Instant};

use bytes::Bytes;
use imgpipe_contract::store::{ObjectStore, PresignedRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{ORIGINALS, TestServer, next_event, start_raw_request};

/// The server's answer, read until its error document is complete or the server closes.
async fn answer(socket: &mut tokio::net::tcp::OwnedReadHalf) -> String {
    let mut answer = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            let n = socket.read(&mut buf).await.expect("read answer");
            answer.extend_from_slice(&buf[..n]);
            if n == 0 || String::from_utf8_lossy(&answer).contains("</Error>") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the server answers a slow body within 10 s");
    String::from_utf8_lossy(&answer).into_owned()
}

/// Sends one byte every `every` until the server stops reading.
fn trickle(mut socket: tokio::net::tcp::OwnedWriteHalf, every: Duration) {
    tokio::spawn(async move {
        while socket.write_all(b"x").await.is_ok() {
            tokio::time::sleep(every).await;
        }
    });
}

async fn presign(server: &TestServer, key: &str, ttl: Duration) -> PresignedRequest {
    server
        .store()
        .presign_put(ORIGINALS, key, "image/jpeg", 1000, ttl)
        .await
        .expect("presign")
}

/// Nothing was stored under `key`, and no event was published for it: the next event is the
/// one of an upload made afterwards.
async fn assert_nothing_stored(
    server: &TestServer,
    events: &mut Box<dyn imgpipe_contract::bus::Consumer>,
    key: &str,
) {
    let store = server.store();
    let head = store.head(ORIGINALS, key).await;
    assert!(head.expect_err("nothing stored").is_not_found());
    store
        .put(
            ORIGINALS,
            "t/marker/m.jpg",
            Bytes::from_static(b"m"),
            "image/jpeg",
        )
        .await
        .expect("marker put");
    let (event, _) = next_event(events).await;
    assert_eq!(event.records[0].key(), "t/marker/m.jpg");
}

#[tokio::test]
async fn a_presigned_put_trickling_past_its_expiry_times_out() {
    let server = TestServer::start().await;
    let mut events = server.events().await;
    let key = "t/img1/trickled.jpg";
    // Expires within 1 to 2 s (X-Amz-Date has whole seconds); a byte every 200 ms keeps the
    // body well inside the idle timeout, so only the URL's expiry can stop it.
    let signed = presign(&server, key, Duration::from_secs(2)).await;
    let started = Instant::now();
    let (mut read, write) = start_raw_request(&signed).await.into_split();
    trickle(write, Duration::from_millis(200));

    let answer = answer(&mut read).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("<Code>RequestTimeout</Code>"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_nothing_stored(&server, &mut events, key).await;
}

#[tokio::test]
async fn an_upload_body_that_stalls_times_out() {
    let server = TestServer::start_configured(|config| {
        config.body_idle_timeout = Duration::from_millis(500);
    })
    .await;
    let mut events = server.events().await;
    let key = "t/img2/stalled.jpg";
    let signed = presign(&server, key, Duration::from_secs(300)).await;
    let mut socket: TcpStream = start_raw_request(&signed).await;
    socket.write_all(&[b'x'; 10]).await.expect("write body");
    // The client stays connected and sends nothing more.
    let (mut read, _write) = socket.into_split();

    let answer = answer(&mut read).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("<Code>RequestTimeout</Code>"), "{answer}");
    assert!(answer.contains("0.5 s"), "names the idle limit: {answer}");
    assert_nothing_stored(&server, &mut events, key).await;
}
