//! Access control: sign-in, the page, security headers.

use crate::support::*;

/// The page's sign-in: a bad key is 401; a good one sets an `HttpOnly`, `SameSite=Strict` cookie
/// with which alone the API answers; signing out clears it. The page runs no inline script, and
/// every kind of response (page, assets, API success and refusal, S3 refusal) carries the
/// security headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sets_a_strict_cookie_and_the_page_is_locked_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = test_config(dir.path());
    let bucket = config.object_store.originals_bucket.clone();
    let running = spawn(config).await;
    let base = running.base_url.clone();
    let (_, editor) = key_for(&running, Role::Editor, "default").await;
    let sign_in = |key: &str| json!({ "key": key });

    let unknown = imgpipe_auth::token::generate().expect("random").key;
    for bad in ["not-a-key", unknown.as_str(), ""] {
        let answer = send(
            &base,
            Method::POST,
            "/api/session",
            Presents::Nothing,
            Some(&sign_in(bad)),
        )
        .await;
        assert_eq!(answer.status, 401, "sign-in with {bad:?}: {}", answer.body);
        assert!(answer.json()["error"].is_string(), "{}", answer.body);
        assert!(
            answer.header("set-cookie").is_empty(),
            "cookie for a bad key"
        );
    }

    let answer = send(
        &base,
        Method::POST,
        "/api/session",
        Presents::Nothing,
        Some(&sign_in(&editor)),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["role"], "editor", "{}", answer.body);
    let cookie = answer.header("set-cookie").to_owned();
    let attributes: Vec<String> = cookie
        .split(';')
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    assert!(attributes.contains(&"httponly".to_owned()), "{cookie}");
    assert!(
        attributes.contains(&"samesite=strict".to_owned()),
        "{cookie}"
    );
    let (name, value) = cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .expect("name=value");
    assert_eq!(name, "imgpipe_key");
    assert!(!answer.body.contains(value), "the key is in the body");

    // The cookie alone (no Authorization) is enough for the API.
    let answer = send(
        &base,
        Method::GET,
        "/api/images",
        Presents::Cookie(value),
        None,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);

    // Signing out replaces the cookie with an empty, expired one; without it the API refuses.
    let answer = send(
        &base,
        Method::DELETE,
        "/api/session",
        Presents::Cookie(value),
        None,
    )
    .await;
    assert!(
        answer.status == 200 || answer.status == 204,
        "{}",
        answer.status
    );
    let cleared = answer.header("set-cookie").to_owned();
    let cleared_attributes: Vec<String> = cleared
        .split(';')
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    assert!(
        cleared.starts_with("imgpipe_key=;") || cleared.starts_with("imgpipe_key=\"\";"),
        "{cleared}"
    );
    assert!(
        cleared_attributes.contains(&"max-age=0".to_owned())
            || cleared_attributes
                .iter()
                .any(|a| a.starts_with("expires=thu, 01 jan 1970")),
        "{cleared}"
    );
    assert!(
        cleared_attributes.contains(&"path=/".to_owned()),
        "{cleared}"
    );
    let answer = send(
        &base,
        Method::GET,
        "/api/images",
        Presents::Cookie(""),
        None,
    )
    .await;
    assert_eq!(answer.status, 401, "{}", answer.body);

    // The page: every script is a file of this origin.
    let page = send(&base, Method::GET, "/", Presents::Nothing, None).await;
    assert_eq!(page.status, 200);
    let lower = page.body.to_ascii_lowercase();
    let scripts: Vec<&str> = lower
        .split("<script")
        .skip(1)
        .map(|s| s.split('>').next().unwrap_or(""))
        .collect();
    assert!(!scripts.is_empty(), "the page has no script at all");
    for tag in &scripts {
        assert!(tag.contains("src="), "inline <script{tag}>");
    }
    assert!(
        !lower.contains("javascript:"),
        "javascript: URL in the page"
    );

    // Security headers on every kind of response.
    let mut wrong = security_header_problems("GET /", &page.headers);
    let original = format!("/{bucket}/default/00000000-0000-7000-8000-000000000000/x.jpg");
    let upload = json!({ "filename": "a.jpg", "content_type": "image/jpeg", "size": 1000 });
    let probes: Vec<(Method, &str, Presents, Option<&Value>)> = vec![
        (Method::GET, "/app.js", Presents::Nothing, None),
        (Method::GET, "/app.css", Presents::Nothing, None),
        (Method::GET, "/healthz", Presents::Nothing, None),
        (Method::GET, "/readyz", Presents::Nothing, None),
        (Method::GET, "/metrics", Presents::Nothing, None),
        (Method::GET, "/api/images", Presents::Nothing, None),
        (Method::GET, "/api/images", Presents::Bearer(&editor), None),
        (Method::GET, "/api/keys", Presents::Bearer(&editor), None),
        (
            Method::POST,
            "/api/uploads",
            Presents::Bearer(&editor),
            Some(&upload),
        ),
        (Method::GET, &original, Presents::Nothing, None),
    ];
    for (method, path, presents, body) in probes {
        let answer = send(&base, method.clone(), path, presents, body).await;
        wrong.extend(security_header_problems(
            &format!("{method} {path} ({})", answer.status),
            &answer.headers,
        ));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    running.stop().await.expect("clean stop");
}
