//! What people upload, through the whole pipeline in one process: bad files (each fails alone,
//! with its reason, and the worker goes on), phone formats with camera metadata, and WebP
//! renditions. Real photos and the hostile files `scripts/fetch-photos.sh` makes.

mod common;
#[path = "../resizer/tests/support/mod.rs"]
mod resizer_support;

use std::time::Duration;

use common::{Client, admin_key, dims, labels, photo, spawn, test_config, wait_idle};
use imgpipe_contract::config::RenditionFormat;
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_files_fail_with_a_reason_and_the_next_photo_succeeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = spawn(test_config(dir.path())).await;
    let client = Client::new(&running.base_url, &admin_key(dir.path()));

    let china = photo("china.jpg");
    let truncated = client
        .upload(
            "truncated.jpg",
            "image/jpeg",
            china[..china.len() / 3].to_vec(),
        )
        .await;
    let text = client
        .upload(
            "notes.jpg",
            "image/jpeg",
            b"these are not the pixels you are looking for".to_vec(),
        )
        .await;
    let bomb = client
        .upload("bomb.png", "image/png", photo("hostile/bomb.png"))
        .await;
    let forged = client
        .upload(
            "forged.jpg",
            "image/jpeg",
            photo("hostile/header_60000.jpg"),
        )
        .await;
    let heic = photo("hopper.heif");
    let cut_heic = client
        .upload("cut.heic", "image/heic", heic[..heic.len() / 2].to_vec())
        .await;
    // The API refuses to issue a URL for zero bytes; another S3 client can still write one.
    let empty_id = uuid::Uuid::now_v7().to_string();
    running
        .backends
        .store
        .put(
            "originals",
            &format!("{empty_id}/empty.jpg"),
            bytes::Bytes::new(),
            "image/jpeg",
        )
        .await
        .expect("zero-byte object stored");
    let good = client
        .upload("flower.jpg", "image/jpeg", photo("flower.jpg"))
        .await;

    let bad: Vec<&str> = [&truncated, &text, &bomb, &forged, &cut_heic]
        .iter()
        .map(|t| t.image_id.as_str())
        .chain([empty_id.as_str()])
        .collect();
    for &id in &bad {
        let doc = client.wait_terminal(id, DEADLINE).await;
        assert_eq!(doc["status"], "failed", "{doc}");
        assert_eq!(doc["error"]["stage"], "resizer");
        let reason = doc["error"]["reason"].as_str().expect("reason");
        assert!(!reason.is_empty());
        // Bad input is retried with backoff like any failure, then dead-lettered.
        assert_eq!(doc["error"]["attempts"], 3, "{doc}");
    }
    let reason = |doc: &Value| {
        doc["error"]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase()
    };
    let text_doc = client.image(&text.image_id).await.expect("doc");
    assert!(
        reason(&text_doc).contains("not an image") || reason(&text_doc).contains("format"),
        "{text_doc}"
    );
    for (id, expected) in [
        (bomb.image_id.as_str(), "over the 100000000 pixel limit"),
        (forged.image_id.as_str(), "60000x60000"),
        (cut_heic.image_id.as_str(), "heif"),
        (empty_id.as_str(), "the file is empty"),
        (truncated.image_id.as_str(), "the file is cut off"),
    ] {
        let doc = client.image(id).await.expect("doc");
        assert!(reason(&doc).contains(expected), "{doc}");
    }
    let good_doc = client.wait_terminal(&good.image_id, DEADLINE).await;
    assert_eq!(good_doc["status"], "done");

    let (_, failed) = client.get_json("/api/images?status=failed").await;
    assert_eq!(failed["items"].as_array().map(Vec::len), Some(bad.len()));
    wait_idle(&running, DEADLINE).await;
    let dead = running
        .backends
        .bus
        .dead_letters("resizer", 10)
        .await
        .expect("dead letters");
    assert_eq!(dead.len(), bad.len(), "every bad file is dead-lettered");
    running.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_formats_and_camera_metadata_reach_the_document() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = spawn(test_config(dir.path())).await;
    let client = Client::new(&running.base_url, &admin_key(dir.path()));

    // (file, content type, format recorded, upright size)
    let uploads = [
        ("hopper.heif", "image/heic", "heic", (128, 128)),
        ("rot1mir0.avif", "image/avif", "avif", (640, 427)),
        ("china_gps.jpg", "image/jpeg", "jpeg", (640, 427)),
    ];
    let mut tickets = Vec::new();
    for (name, content_type, ..) in uploads {
        tickets.push(client.upload(name, content_type, photo(name)).await);
    }
    for (ticket, (name, _, format, (width, height))) in tickets.iter().zip(uploads) {
        let doc = client.wait_terminal(&ticket.image_id, DEADLINE).await;
        assert_eq!(doc["status"], "done", "{name}: {doc}");
        assert_eq!(doc["original"]["format"], format, "{name}");
        assert_eq!(dims(&doc, "preview"), (width, height), "{name}");
        assert_eq!(
            (
                doc["original"]["width"].as_u64(),
                doc["original"]["height"].as_u64()
            ),
            (Some(width), Some(height)),
            "{name}"
        );
        assert!(!doc["tags"].as_array().expect("tags").is_empty(), "{name}");
    }
    let china = client.image(&tickets[2].image_id).await.expect("doc");
    let camera = &china["original"]["camera"];
    assert_eq!(camera["make"], "Canon", "{china}");
    assert_eq!(camera["model"], "Canon EOS 5D Mark IV");
    assert_eq!(camera["taken_at"], "2019-07-14T09:21:05+08:00");
    assert!(
        camera.get("gps").is_none(),
        "GPS is private by default: {camera}"
    );
    running.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webp_renditions_are_served_and_tagged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.resizer.format = RenditionFormat::Webp;
    let running = spawn(config).await;
    let client = Client::new(&running.base_url, &admin_key(dir.path()));

    let ticket = client
        .upload("chelsea.jpg", "image/jpeg", photo("chelsea.jpg"))
        .await;
    let doc = client.wait_terminal(&ticket.image_id, DEADLINE).await;
    assert_eq!(doc["status"], "done", "{doc}");
    for which in ["thumb", "preview"] {
        let rendition = &doc["renditions"][which];
        assert_eq!(rendition["content_type"], "image/webp", "{doc}");
        assert!(
            rendition["key"]
                .as_str()
                .is_some_and(|k| k.ends_with(".webp")),
            "{rendition}"
        );
        let url = rendition["url"].as_str().expect("url");
        let res = client
            .api(reqwest::Method::GET, url)
            .send()
            .await
            .expect("reachable");
        assert_eq!(res.status(), 200);
        let bytes = res.bytes().await.expect("body");
        let image =
            image::load_from_memory_with_format(&bytes, image::ImageFormat::WebP).expect("a WebP");
        assert_eq!(
            (u64::from(image.width()), u64::from(image.height())),
            dims(&doc, which)
        );
    }
    // The recognizer reads the WebP preview as well as a JPEG one.
    let top5 = labels(&doc);
    assert!(
        top5.iter()
            .any(|l| ["tabby", "tiger cat", "Egyptian cat"].contains(&l.as_str())),
        "{top5:?}"
    );
    running.stop().await.expect("clean stop");
}

/// Two 16-bit 100 MP PNGs, under a megabyte each but about 431 MiB each to decode even at 8 bits
/// a sample, against a decode budget of 256 MiB: both fail from their headers with the reason
/// (before a byte of pixels is allocated), and a photo uploaded between them is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bombs_fail_on_the_decode_budget_and_the_photo_succeeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.resizer.decode_memory_mb = 256;
    let running = spawn(config).await;
    let client = Client::new(&running.base_url, &admin_key(dir.path()));

    let bomb = resizer_support::sixteen_bit_bomb(10_000, 10_000);
    assert!(bomb.len() < 1 << 20, "{} bytes on disk", bomb.len());
    let first = client.upload("bomb-a.png", "image/png", bomb.clone()).await;
    let cat = client
        .upload("chelsea.jpg", "image/jpeg", photo("chelsea.jpg"))
        .await;
    let second = client.upload("bomb-b.png", "image/png", bomb).await;

    for ticket in [&first, &second] {
        let doc = client.wait_terminal(&ticket.image_id, DEADLINE).await;
        assert_eq!(doc["status"], "failed", "{doc}");
        let reason = doc["error"]["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("over the decode memory budget of 256 MiB"),
            "{reason}"
        );
    }
    let doc = client.wait_terminal(&cat.image_id, DEADLINE).await;
    assert_eq!(doc["status"], "done", "{doc}");
    running.stop().await.expect("stops");
}
