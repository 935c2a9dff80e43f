//! Storage limits: a tenant over its quota (images or bytes) is refused with the reason, another
//! tenant is not; the embedded mode refuses uploads when its disk is nearly full.

mod common;

use std::time::Duration;

use common::{Client, admin_key, photo, spawn, test_config};
use imgpipe_auth::keys_api::make_key;
use imgpipe_contract::keys::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_quota_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.upload.quota_images = 2;
    let running = spawn(config).await;
    let admin = Client::new(&running.base_url, &admin_key(dir.path()));
    let (_, other_key) = make_key(
        running.backends.keys.as_ref(),
        Role::Uploader,
        vec!["other".into()],
        "",
    )
    .await
    .expect("key");
    let other = Client::new(&running.base_url, &other_key);

    let bytes = photo("chelsea.png");
    for name in ["one.png", "two.png"] {
        let ticket = admin.upload(name, "image/png", bytes.clone()).await;
        admin
            .wait_terminal(&ticket.image_id, Duration::from_secs(60))
            .await;
    }
    let refused = admin
        .request_upload("three.png", "image/png", bytes.len())
        .await;
    assert_eq!(refused.status(), 413);
    let body: serde_json::Value = refused.json().await.expect("json");
    let reason = body["error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("over quota") && reason.contains("2 of its 2 images"),
        "{reason}"
    );
    let served = other
        .request_upload("mine.png", "image/png", bytes.len())
        .await;
    assert_eq!(served.status(), 201, "another tenant has its own quota");
    running.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_over_the_quota_and_a_full_disk_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.upload.quota_bytes = 1000;
    let running = spawn(config).await;
    let admin = Client::new(&running.base_url, &admin_key(dir.path()));
    let refused = admin.request_upload("big.jpg", "image/jpeg", 1001).await;
    assert_eq!(refused.status(), 413);
    let body: serde_json::Value = refused.json().await.expect("json");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("1000 bytes"),
        "{body}"
    );
    assert_eq!(
        admin
            .request_upload("ok.jpg", "image/jpeg", 1000)
            .await
            .status(),
        201
    );
    running.stop().await.expect("stop");

    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    // More free space than any disk has: the disk counts as nearly full.
    config.upload.min_free_bytes = u64::MAX / 4;
    let running = spawn(config).await;
    let admin = Client::new(&running.base_url, &admin_key(dir.path()));
    let refused = admin.request_upload("a.jpg", "image/jpeg", 10).await;
    assert_eq!(refused.status(), 507);
    let body: serde_json::Value = refused.json().await.expect("json");
    assert!(
        body["error"].as_str().unwrap_or_default().contains("disk"),
        "{body}"
    );
    running.stop().await.expect("stop");
}
