//! The web app in a real browser (issue 14's acceptance): headless Chromium (Debian) driven by
//! Playwright (`tests/browser/app.mjs`) against the embedded pipeline signs in with the admin
//! key, uploads three real photos through the file input and watches their progress bars and
//! cards turn tagged without a reload while a second page sees them appear; filters by a
//! category chip, a category facet, the status and the camera (each in the URL, undone by the
//! back button); finds the scanned page by a word read in it; opens its detail view with the
//! text boxes over the preview; adds an editor tag that survives a reload and a reprocess and is
//! found by search and `?tag=` in any case; deletes a photo (gone from both pages, its thumbnail
//! answers 404); reloads with every thumbnail from the browser cache; and at 360 px wide has no
//! horizontal scroll and keeps the grid above the upload panel. Nothing may be logged as a
//! console error (Content-Security-Policy violations are). Screenshots go to `target/`; with
//! `IMGPIPE_SCREENSHOTS_TO_DOCS=1` in the environment also, for the README, to
//! `docs/screenshot-grid.png` and `docs/screenshot-detail.png`.

mod common;

use std::process::Command;

use common::{admin_key, repo_root, spawn, test_config};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_app_uploads_browses_corrects_and_deletes_in_a_browser() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = spawn(test_config(dir.path())).await;
    let root = repo_root();
    let photos = root.join("tests/photos");
    for name in ["chelsea.jpg", "page.png", "china_gps.jpg"] {
        assert!(
            photos.join(name).exists(),
            "{} missing: run `bash scripts/setup.sh`",
            photos.join(name).display()
        );
    }
    let out = root.join("target");
    std::fs::create_dir_all(&out).expect("target dir");
    let docs = root.join("docs");
    let base = running.base_url.clone();
    let key = admin_key(dir.path());
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(root.join("tests/browser/app.mjs"))
            .arg(&base)
            .arg(&key)
            .arg(&photos)
            .arg(&out)
            .arg(&docs)
            .output()
            .expect("node runs (installed by scripts/setup.sh)")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: Value = serde_json::from_str(stdout.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("report JSON: {e}\nstdout: {stdout}\nstderr: {stderr}"));
    assert!(
        output.status.success() && report.get("failure").is_none(),
        "browser run failed: {report:#}\nstderr: {stderr}"
    );
    check(&report);
    running.stop().await.expect("stop");
}

fn check(r: &Value) {
    let names3 = json!(["chelsea.jpg", "china_gps.jpg", "page.png"]);
    assert_eq!(r["signed_in"], true, "{r}");
    assert_eq!(r["errors"], json!([]), "no page errors: {r}");
    assert_eq!(
        r["console_errors"],
        json!([]),
        "no console errors (CSP violations among them): {r}"
    );
    assert!(
        r["empty_text"]
            .as_str()
            .is_some_and(|t| t.starts_with("No images yet")),
        "the empty state says so: {r}"
    );

    // Uploads: a line and a progress bar each, filled, then the log cleared itself.
    assert_eq!(r["upload_lines"], 3, "{r}");
    for name in ["chelsea.jpg", "page.png", "china_gps.jpg"] {
        let seen = &r["uploads"][name];
        assert_eq!(seen["max_fraction"], 1.0, "{name}'s bar filled: {r}");
        assert!(
            seen["states"].as_array().is_some_and(
                |s| s.contains(&json!("uploading")) && s.last() == Some(&json!("uploaded"))
            ),
            "{name}: {seen}"
        );
        // Both pages watched the card move through the stages, pushed by the server.
        for stages in [&r["stages"][name], &r["other_stages"][name]] {
            let stages = stages.as_array().expect("stages seen");
            assert_eq!(stages.last(), Some(&json!("tagged")), "{name}: {r}");
            assert!(
                stages.len() >= 2,
                "{name} went through stages on screen: {r}"
            );
        }
    }
    assert_eq!(r["not_reloaded"], true, "{r}");
    assert_eq!(r["other_not_reloaded"], true, "{r}");
    assert_eq!(
        r["other_names"], names3,
        "the second page saw them appear: {r}"
    );

    // The cat's card: the 256 px thumbnail at 1x (the preview for 2x), tags, alt, placeholder.
    assert_eq!(r["thumb_width"], 256, "{r}");
    assert!(
        r["thumb_srcset"]
            .as_str()
            .is_some_and(|s| s.contains("/thumb") && s.contains("/preview") && s.contains("2x")),
        "{r}"
    );
    let cat_labels = ["tabby", "tiger cat", "Egyptian cat"];
    assert!(
        r["tags"].as_array().is_some_and(|t| t
            .iter()
            .any(|t| cat_labels.contains(&t.as_str().unwrap_or("")))),
        "a cat tag on the card: {r}"
    );
    assert!(
        r["thumb_alt"]
            .as_str()
            .is_some_and(|a| cat_labels.iter().any(|l| a.contains(l))),
        "alt text from the tags: {r}"
    );
    assert_eq!(
        r["placeholder"], true,
        "the ThumbHash placeholder is drawn: {r}"
    );

    // Filters: chip, facet, status, camera; each in the URL; back restores.
    assert_eq!(r["chip"], "animal", "{r}");
    assert_eq!(r["chip_names"], json!(["chelsea.jpg"]), "{r}");
    assert_eq!(r["category_filter"]["url"], "?tag=animal", "{r}");
    assert_eq!(r["category_filter"]["names"], json!(["chelsea.jpg"]), "{r}");
    assert_eq!(r["back_names"], 3, "the back button undoes a filter: {r}");
    assert_eq!(r["status_facets"], json!(["done"]), "{r}");
    assert_eq!(r["status_filter"]["url"], "?status=done", "{r}");
    assert_eq!(r["status_filter"]["count"], 3, "{r}");
    assert_eq!(r["camera_facet"], "Canon EOS 5D Mark IV", "{r}");
    assert_eq!(r["camera_names"], json!(["china_gps.jpg"]), "{r}");

    // Search by a word read in the picture.
    assert_eq!(r["search"]["names"], json!(["page.png"]), "{r}");
    assert_eq!(r["search"]["url"], "?q=histogram", "{r}");
    assert!(
        r["search"]["text"][0]
            .as_str()
            .is_some_and(|t| t.to_lowercase().contains("histogram")),
        "the card shows the text: {r}"
    );

    // The detail view.
    let d = &r["detail"];
    assert_eq!(d["url_has_image"], true, "{r}");
    assert_eq!(d["title"], "page.png", "{r}");
    assert!(
        d["boxes"].as_u64().is_some_and(|n| n >= 1),
        "text boxes drawn: {r}"
    );
    assert_eq!(d["boxes_inside"], true, "the boxes lie on the preview: {r}");
    assert!(
        d["text"].as_array().is_some_and(|t| t.iter().any(|l| l
            .as_str()
            .unwrap_or("")
            .to_lowercase()
            .contains("histogram"))),
        "{r}"
    );
    assert!(
        d["model"].as_str().is_some_and(|m| !m.trim().is_empty()),
        "model name and version: {r}"
    );
    assert!(
        d["download"].as_str().is_some_and(|h| !h.is_empty()),
        "download link: {r}"
    );
    assert_eq!(r["arrows"], true, "{r}");
    assert_eq!(r["esc_closes"], true, "{r}");

    // The editor tag outlives a reload and a reprocess, and is found in any case.
    assert_eq!(r["editor_tag_after_reload"], json!(["Frontpage ✕"]), "{r}");
    assert_eq!(
        r["reprocess_tagged"]["later"], true,
        "the reprocess tagged the picture again (a later stage time): {r}"
    );
    assert_eq!(
        r["editor_tag_after_reprocess"],
        json!(["Frontpage ✕"]),
        "{r}"
    );
    assert_eq!(r["editor_tag_search"], json!(["page.png"]), "{r}");
    assert_eq!(r["editor_tag_filter"], json!(["page.png"]), "{r}");

    // Deleted after a confirmation: gone from both pages, thumbnail 404.
    let del = &r["delete"];
    assert_eq!(del["confirmed"], true, "{r}");
    assert_eq!(del["names"], json!(["chelsea.jpg", "page.png"]), "{r}");
    assert_eq!(
        del["other_names"],
        json!(["chelsea.jpg", "page.png"]),
        "{r}"
    );
    assert_eq!(del["thumb_status"], 404, "{r}");

    // A second load shows both thumbnails and downloads (or revalidates) none of them: each
    // came from the disk cache, or from Blink's memory cache without reaching the network.
    assert_eq!(r["reload_thumbs"]["shown"], 2, "{r}");
    assert_eq!(r["reload_thumbs"]["fetched"], 0, "{r}");

    // A phone.
    let p = &r["phone"];
    assert!(
        p["scroll_width"].as_u64().is_some_and(|w| w <= 360),
        "no horizontal scroll: {r}"
    );
    assert!(
        p["detail_scroll_width"].as_u64().is_some_and(|w| w <= 360),
        "{r}"
    );
    assert_eq!(p["panel_position"], "fixed", "the upload panel floats: {r}");
    assert!(
        p["first_card_top"]
            .as_i64()
            .zip(p["panel_top"].as_i64())
            .is_some_and(|(card, panel)| card < panel),
        "the grid starts above the upload panel: {r}"
    );
    assert!(
        p["refusal"]
            .as_str()
            .is_some_and(|t| t.contains("not a supported type")),
        "a text file is refused with a clear message: {r}"
    );
}
