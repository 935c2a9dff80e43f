//! Access control: safe by default.

use crate::support::*;

/// The real binary: `imgpipe up` on 0.0.0.0 starts with access control on and no flag (keys
/// required); with access control off it refuses to start, naming `--insecure`; with
/// `--insecure` it starts and serves the API without a key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_on_a_network_address_is_safe_by_default() {
    let root = tempfile::tempdir().expect("tempdir");

    // Access control on (the default): starts on every interface, and wants keys.
    let data = root.path().join("keys");
    let mut child = imgpipe()
        .args(["up", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(&data)
        .spawn()
        .expect("imgpipe up starts");
    let printed = wait_until_up(&mut child)
        .await
        .unwrap_or_else(|log| panic!("imgpipe up on 0.0.0.0 with keys: {log}"));
    let base = printed.replace("0.0.0.0", "127.0.0.1");
    let answer = send(&base, Method::GET, "/api/images", Presents::Nothing, None).await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    let admin = admin_key(&data);
    let answer = send(
        &base,
        Method::GET,
        "/api/images",
        Presents::Bearer(&admin),
        None,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    child.kill().await.expect("stop imgpipe");

    // Access control off on a network address: refused, naming the flag.
    let data = root.path().join("refused");
    let port = free_port();
    let refused = imgpipe()
        .args(["up", "--listen", &format!("0.0.0.0:{port}"), "--data-dir"])
        .arg(&data)
        .env("IMGPIPE_ACCESS__ENABLED", "false")
        .spawn()
        .expect("imgpipe up runs");
    let out = tokio::time::timeout(START_DEADLINE, refused.wait_with_output())
        .await
        .expect("imgpipe up exited (it was killed at the deadline)")
        .expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "started without access control:\n{stderr}"
    );
    assert!(
        stderr.contains("--insecure"),
        "the refusal does not name --insecure:\n{stderr}"
    );

    // With --insecure: starts, and the API answers without a key.
    let data = root.path().join("insecure");
    let port = free_port();
    let mut child = imgpipe()
        .args([
            "up",
            "--insecure",
            "--listen",
            &format!("0.0.0.0:{port}"),
            "--data-dir",
        ])
        .arg(&data)
        .env("IMGPIPE_ACCESS__ENABLED", "false")
        .spawn()
        .expect("imgpipe up starts");
    wait_until_up(&mut child)
        .await
        .unwrap_or_else(|log| panic!("imgpipe up --insecure: {log}"));
    let base = format!("http://127.0.0.1:{port}");
    let answer = send(&base, Method::GET, "/api/images", Presents::Nothing, None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    child.kill().await.expect("stop imgpipe");
}

/// A web app on an allowed origin may call the API from a browser: its preflight is answered
/// with that origin; any other origin gets no CORS grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowed_origins_may_call_the_api_from_a_browser() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.access.cors_origins = vec!["https://desk.example.org".to_owned()];
    let running = spawn(config).await;
    let preflight = |origin: &'static str| {
        http()
            .request(Method::OPTIONS, format!("{}/api/uploads", running.base_url))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let allowed = preflight("https://desk.example.org")
        .await
        .expect("preflight");
    assert!(allowed.status().is_success(), "{}", allowed.status());
    let grant = allowed.headers().get("access-control-allow-origin");
    assert_eq!(
        grant.and_then(|v| v.to_str().ok()),
        Some("https://desk.example.org")
    );
    let methods = allowed
        .headers()
        .get("access-control-allow-methods")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(methods.contains("POST"), "{methods}");

    let other = preflight("https://evil.example.com")
        .await
        .expect("preflight");
    assert!(
        other.headers().get("access-control-allow-origin").is_none(),
        "no grant for an origin not listed"
    );
    running.stop().await.expect("stop");
}
