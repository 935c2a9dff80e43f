//! The page in a real browser: headless Chromium (Debian) driven by Playwright signs in with the
//! pipeline's admin key, picks a cat photo, uploads it through the presigned URL, and sees its
//! thumbnail and a cat tag appear; then uploads a scanned page, finds it by a word of its text in
//! the search box, and filters by a category. Nothing may be logged as a console error (the
//! Content-Security-Policy's violations are).

mod common;

use std::process::Command;

use common::{admin_key, repo_root, spawn, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_uploads_a_cat_and_shows_its_thumbnail_and_tag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = spawn(test_config(dir.path())).await;
    let root = repo_root();
    let photo = root.join("tests/photos/chelsea.jpg");
    assert!(
        photo.exists(),
        "{} missing: run `bash scripts/setup.sh`",
        photo.display()
    );
    let text_photo = root.join("tests/photos/page.png");
    let screenshot = root.join("target/browser-upload.png");
    let base = running.base_url.clone();
    let key = admin_key(dir.path());
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(root.join("tests/browser/upload.mjs"))
            .arg(&base)
            .arg(&key)
            .arg(&photo)
            .arg("tabby,tiger cat,Egyptian cat")
            .arg(&screenshot)
            .arg(&text_photo)
            .arg("histogram")
            .output()
            .expect("node runs (installed by scripts/setup.sh)")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser test failed\nstdout: {stdout}\nstderr: {stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("report JSON");
    assert_eq!(report["signed_in"], true, "{report}");
    assert_eq!(
        report["console_errors"],
        serde_json::json!([]),
        "no console errors (CSP violations among them): {report}"
    );
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    assert_eq!(report["thumb_width"], 256, "{report}");
    assert_eq!(
        report["search"]["names"],
        serde_json::json!(["page.png"]),
        "the search box finds the page by its text: {report}"
    );
    assert!(
        report["search"]["text"][0]
            .as_str()
            .is_some_and(|t| t.to_lowercase().contains("histogram")),
        "the card shows the text: {report}"
    );
    assert_eq!(report["category"], "animal", "{report}");
    assert_eq!(
        report["category_names"],
        serde_json::json!(["chelsea.jpg"]),
        "a category chip filters: {report}"
    );
    running.stop().await.expect("stop");
}
