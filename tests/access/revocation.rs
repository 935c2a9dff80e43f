//! Access control: revocation.

use crate::support::*;

/// An editor key revoked over HTTP and an admin key made and revoked with the real `imgpipe keys`
/// binary (another process, writing the database the pipeline reads): within CACHE_TTL + 1 s
/// every route refuses both with 401, as a Bearer key and as the sign-in cookie, and sign-in
/// with them fails. The other keys keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_on_every_route_within_the_cache_ttl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = spawn(test_config(dir.path())).await;
    let base = running.base_url.clone();
    let admin = Client::new(&base, &admin_key(dir.path()));

    let res = admin
        .api(Method::POST, "/api/keys")
        .json(&json!({ "role": "editor", "name": "revoked over HTTP" }))
        .send()
        .await
        .expect("API reachable");
    assert_eq!(res.status(), 201);
    let made: Value = res.json().await.expect("json");
    let http_key = made["key"].as_str().expect("key").to_owned();
    let http_id = made["details"]["id"].as_str().expect("id").to_owned();

    let cli_key = keys_cli(
        dir.path(),
        &[
            "create", "--role", "admin", "--tenant", "default", "--name", "cli",
        ],
    )
    .await
    .trim()
    .to_owned();
    let listed = keys_cli(dir.path(), &["list", "--json"]).await;
    let cli_id = listed
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
        .find(|k| cli_key.starts_with(k["prefix"].as_str().expect("prefix")))
        .and_then(|k| k["id"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("the CLI's key is not listed:\n{listed}"));

    // Both work, and the pipeline has them cached: the slowest case for a revocation.
    for key in [&http_key, &cli_key] {
        let answer = send(
            &base,
            Method::GET,
            "/api/images",
            Presents::Bearer(key),
            None,
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let answer = send(
            &base,
            Method::GET,
            "/api/images",
            Presents::Cookie(key),
            None,
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let metrics = send(
        &base,
        Method::GET,
        "/metrics",
        Presents::Bearer(&cli_key),
        None,
    )
    .await;
    assert_eq!(metrics.status, 200, "the CLI's admin key reads /metrics");

    let res = admin
        .api(Method::DELETE, &format!("/api/keys/{http_id}"))
        .send()
        .await
        .expect("API reachable");
    assert_eq!(res.status(), 200);
    let revoked: Value = res.json().await.expect("json");
    assert!(revoked["details"]["revoked_at"].is_string(), "{revoked}");
    keys_cli(dir.path(), &["revoke", &cli_id]).await;

    // The process that revoked over HTTP refuses at once.
    let answer = send(
        &base,
        Method::GET,
        "/api/images",
        Presents::Bearer(&http_key),
        None,
    )
    .await;
    assert_eq!(answer.status, 401, "revoked here, still served here");

    // The one wait that is the property itself: a cached lookup lives CACHE_TTL.
    tokio::time::sleep(CACHE_TTL + Duration::from_secs(1)).await;
    for (which, key) in [("HTTP-revoked", &http_key), ("CLI-revoked", &cli_key)] {
        for presents in [Presents::Bearer(key), Presents::Cookie(key)] {
            let wrong = not_refused(&base, presents).await;
            assert!(
                wrong.is_empty(),
                "{which} key still served:\n{}",
                wrong.join("\n")
            );
        }
        let answer = send(
            &base,
            Method::POST,
            "/api/session",
            Presents::Nothing,
            Some(&json!({ "key": key })),
        )
        .await;
        assert_eq!(answer.status, 401, "{which} key signs in: {}", answer.body);
        assert!(answer.header("set-cookie").is_empty());
    }

    // The admin still works and sees both revoked.
    let (status, keys) = admin.get_json("/api/keys").await;
    assert_eq!(status, 200);
    for id in [&http_id, &cli_id] {
        let key = keys["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|k| k["id"] == *id)
            .unwrap_or_else(|| panic!("{id} not listed: {keys}"));
        assert!(key["revoked_at"].is_string(), "{key}");
    }
    running.stop().await.expect("clean stop");
}

/// Two serving processes share one key database: the whole pipeline in this test process, and
/// the real binary's `metadata-store` beside it. Both have the key cached; it is revoked through
/// the first's API, and within CACHE_TTL + 1 s the second refuses it too.
///
/// Why PostgreSQL: the SQLite database lives at `DATA_DIR/metadata.sqlite` beside the embedded
/// bus (`DATA_DIR/bus.sqlite`), which one process owns, so a second serving process cannot share
/// the first's data dir. Sharing a PostgreSQL schema (a fresh one per test, as
/// tests/conformance_postgres.rs does, `IMGPIPE_TEST_POSTGRES_URL` or the local server) is how
/// separate processes share keys in a real deployment; each keeps its own embedded bus, and the
/// second reads objects through the first's S3 endpoint with its credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_reaches_another_process_within_the_cache_ttl() {
    let metadata = crate::common::engines::fresh_postgres();
    let outcome = tokio::spawn(revocation_across_processes(metadata.clone())).await;
    PostgresDb::drop_schema(&metadata)
        .await
        .expect("drop the test schema");
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn revocation_across_processes(metadata: MetadataConfig) {
    let dir_a = tempfile::tempdir().expect("tempdir");
    let dir_b = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir_a.path());
    config.metadata = metadata.clone();
    let first = spawn(config).await;
    let admin = Client::new(&first.base_url, &admin_key(dir_a.path()));

    let s3: Value = serde_json::from_slice(
        &std::fs::read(dir_a.path().join("s3-credentials.json")).expect("S3 credentials"),
    )
    .expect("json");
    let mut second = imgpipe();
    second
        .args(["metadata-store", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir_b.path())
        .env("IMGPIPE_METADATA__KIND", "postgres")
        .env("IMGPIPE_METADATA__URL", &metadata.url)
        .env("IMGPIPE_METADATA__SCHEMA", &metadata.schema)
        .env("IMGPIPE_OBJECT_STORE__KIND", "s3")
        .env("IMGPIPE_OBJECT_STORE__ENDPOINT", &first.base_url)
        .env(
            "IMGPIPE_OBJECT_STORE__ACCESS_KEY",
            s3["access_key"].as_str().expect("access key"),
        )
        .env(
            "IMGPIPE_OBJECT_STORE__SECRET_KEY",
            s3["secret_key"].as_str().expect("secret key"),
        );
    let mut second = second.spawn().expect("imgpipe metadata-store starts");
    let second_base = wait_until_up(&mut second)
        .await
        .unwrap_or_else(|log| panic!("the second process: {log}"));

    let res = admin
        .api(Method::POST, "/api/keys")
        .json(&json!({ "role": "editor", "name": "used on two processes" }))
        .send()
        .await
        .expect("API reachable");
    assert_eq!(res.status(), 201);
    let made: Value = res.json().await.expect("json");
    let key = made["key"].as_str().expect("key").to_owned();
    let id = made["details"]["id"].as_str().expect("id").to_owned();

    // Both processes accept it (and so have it cached).
    for base in [&first.base_url, &second_base] {
        let answer = send(
            base,
            Method::GET,
            "/api/images",
            Presents::Bearer(&key),
            None,
        )
        .await;
        assert_eq!(answer.status, 200, "{base}: {}", answer.body);
    }
    let res = admin
        .api(Method::DELETE, &format!("/api/keys/{id}"))
        .send()
        .await
        .expect("API reachable");
    assert_eq!(res.status(), 200);

    tokio::time::sleep(CACHE_TTL + Duration::from_secs(1)).await;
    for base in [&first.base_url, &second_base] {
        for presents in [Presents::Bearer(&key), Presents::Cookie(&key)] {
            for path in ["/api/images", "/api/tags", "/api/keys"] {
                let answer = send(base, Method::GET, path, presents, None).await;
                assert_eq!(answer.status, 401, "{base}{path}: {}", answer.body);
            }
        }
    }
    // The second process still serves the keys that are valid: it did not just stop answering.
    let other_admin = admin_key(dir_a.path());
    let answer = send(
        &second_base,
        Method::GET,
        "/api/images",
        Presents::Bearer(&other_admin),
        None,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);

    second.kill().await.expect("stop the second process");
    first.stop().await.expect("clean stop");
}
