//! Access control end to end, on the real pipeline over real HTTP: what each role is refused on
//! every route, tenants that cannot see each other, revoked keys (in this process, from the
//! command line, and in another process), the embedded S3 endpoint's credentials and presigned
//! URLs, per-key rate limits, the page's sign-in and security headers, and the refusal to serve a
//! network with access control off.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use common::{Client, Ticket, admin_key, labels, photo, repo_root, spawn, test_config};
use imgpipe::Running;
use imgpipe_auth::CACHE_TTL;
use imgpipe_auth::keys_api::make_key;
use imgpipe_contract::config::MetadataConfig;
use imgpipe_contract::keys::Role;
use imgpipe_db_postgres::PostgresDb;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Longest a photo may take through the pipeline on a busy two-core machine.
const DEADLINE: Duration = Duration::from_secs(120);
/// Longest the binary may take to start (it loads the recognizer's models) or to refuse to.
const START_DEADLINE: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A key made in code, straight in the pipeline's key store.
async fn key_for(running: &Running, role: Role, tenant: &str) -> (String, String) {
    let (record, key) = make_key(
        running.backends.keys.as_ref(),
        role,
        vec![tenant.to_owned()],
        &format!("test {role} of {tenant}"),
    )
    .await
    .expect("key made");
    (record.id, key)
}

/// An HTTP client without connection reuse (see `common::Client::new`).
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

/// How a request presents its key.
#[derive(Clone, Copy)]
enum Presents<'a> {
    Nothing,
    Bearer(&'a str),
    Cookie(&'a str),
}

/// A response read whole.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

async fn send(
    base: &str,
    method: Method,
    path: &str,
    presents: Presents<'_>,
    body: Option<&Value>,
) -> Answer {
    let mut req = http().request(method, format!("{base}{path}"));
    req = match presents {
        Presents::Nothing => req,
        Presents::Bearer(key) => req.bearer_auth(key),
        Presents::Cookie(key) => req.header("cookie", format!("imgpipe_key={key}")),
    };
    if let Some(body) = body {
        req = req.json(body);
    }
    let res = req.send().await.expect("pipeline reachable");
    Answer {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: res.text().await.unwrap_or_default(),
    }
}

/// What is wrong with a response's security headers, if anything.
fn security_header_problems(what: &str, headers: &HeaderMap) -> Vec<String> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let mut problems = Vec::new();
    let csp = get("content-security-policy");
    let directive = |name: &str| {
        csp.split(';')
            .map(str::trim)
            .find(|d| d.split_whitespace().next() == Some(name))
            .map(str::to_owned)
    };
    match directive("script-src").or_else(|| directive("default-src")) {
        None => problems.push(format!("{what}: CSP {csp:?} does not restrict scripts")),
        Some(d)
            if d.contains("'unsafe-inline'") || d.contains("'unsafe-eval'") || d.contains('*') =>
        {
            problems.push(format!(
                "{what}: CSP allows inline or foreign script: {d:?}"
            ));
        }
        Some(_) => {}
    }
    if directive("frame-ancestors").as_deref() != Some("frame-ancestors 'none'") {
        problems.push(format!("{what}: CSP {csp:?} lacks frame-ancestors 'none'"));
    }
    if get("x-content-type-options") != "nosniff" {
        problems.push(format!("{what}: X-Content-Type-Options is not nosniff"));
    }
    let referrer = get("referrer-policy");
    let strict = [
        "no-referrer",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
    ];
    if !strict.contains(&referrer.as_str()) {
        problems.push(format!("{what}: Referrer-Policy {referrer:?}"));
    }
    problems
}

/// Ids of the images a list request returns, and its raw body.
async fn list_ids(client: &Client, query: &[(&str, &str)]) -> (Vec<String>, String) {
    let res = client
        .api(Method::GET, "/api/images")
        .query(query)
        .send()
        .await
        .expect("API reachable");
    assert_eq!(res.status(), 200, "list {query:?}");
    let body = res.text().await.expect("body");
    let page: Value = serde_json::from_str(&body).expect("JSON page");
    let ids = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|d| d["id"].as_str().expect("id").to_owned())
        .collect();
    (ids, body)
}

/// How many of the caller's images carry `label`, per `GET /api/tags`, and the raw body.
async fn tag_count(client: &Client, label: &str) -> (u64, String) {
    let (status, counts) = client.get_json("/api/tags").await;
    assert_eq!(status, 200, "tags");
    let count = counts
        .as_array()
        .expect("tag counts are a list")
        .iter()
        .find(|c| c["label"] == label)
        .map_or(0, |c| c["count"].as_u64().expect("count"));
    (count, counts.to_string())
}

/// The `imgpipe` binary, run from the repository (where it finds the models) with none of the
/// runner's `IMGPIPE_*` settings; killed when dropped.
fn imgpipe() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_imgpipe"));
    command
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("IMGPIPE_") {
            command.env_remove(&name);
        }
    }
    command.env("IMGPIPE_LOG__FILTER", "warn");
    command
}

/// Waits for a started `imgpipe` service to print its address; then keeps draining its stderr.
async fn wait_until_up(child: &mut Child) -> Result<String, String> {
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    let mut log = Vec::new();
    let deadline = tokio::time::Instant::now() + START_DEADLINE;
    loop {
        match tokio::time::timeout_at(deadline, lines.next_line()).await {
            Ok(Ok(Some(line))) => {
                if let Some(url) = line.trim().strip_prefix("imgpipe is up: open ") {
                    let base = url.trim_end_matches('/').to_owned();
                    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                    return Ok(base);
                }
                log.push(line);
            }
            Ok(_) => return Err(format!("exited before it was up:\n{}", log.join("\n"))),
            Err(_) => {
                return Err(format!(
                    "not up within {START_DEADLINE:?}:\n{}",
                    log.join("\n")
                ));
            }
        }
    }
}

/// Runs an `imgpipe keys` command to its end; returns its stdout, or panics with its stderr.
async fn keys_cli(data_dir: &Path, args: &[&str]) -> String {
    let mut command = imgpipe();
    command
        .arg("keys")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::piped());
    let out = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("imgpipe keys finished within 60 s")
        .expect("imgpipe keys runs");
    assert!(
        out.status.success(),
        "imgpipe keys {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// An S3 client of the pipeline's embedded endpoint with the given credentials.
fn s3(endpoint: &str, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(access_key, secret_key, None, None, "test"))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The HTTP status and S3 error code of a refused SDK call; panics if it succeeded.
fn refusal<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    what: &str,
    result: Result<T, SdkError<E, HttpResponse>>,
) -> (u16, String) {
    match result {
        Ok(ok) => panic!("{what} succeeded: {ok:?}"),
        Err(e) => {
            let status = e.raw_response().map_or(0, |r| r.status().as_u16());
            (status, e.code().unwrap_or("").to_owned())
        }
    }
}

/// Whether `bucket/key` exists, asked with the pipeline's own credentials.
async fn exists(store: &aws_sdk_s3::Client, bucket: &str, key: &str) -> bool {
    match store.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => true,
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => false,
        Err(e) => panic!("HEAD {bucket}/{key} with the pipeline's credentials failed: {e:?}"),
    }
}

/// A presigned PUT of a ticket with `extra` headers and a body of the declared length.
async fn put_to(ticket: &Ticket, url: &str, extra: &[(&str, &str)], body: Vec<u8>) -> Answer {
    let mut req = http().put(url);
    for (k, v) in &ticket.headers {
        req = req.header(k, v);
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let res = req.body(body).send().await.expect("store reachable");
    Answer {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: res.text().await.unwrap_or_default(),
    }
}

/// Requests every keyed route with `presents` and returns the ones not answered 401.
async fn not_refused(base: &str, presents: Presents<'_>) -> Vec<String> {
    let some_id = uuid::Uuid::now_v7().to_string();
    let upload = json!({ "filename": "x.jpg", "content_type": "image/jpeg", "size": 1000 });
    let complete = json!({ "key": format!("default/{some_id}/x.jpg") });
    let new_key = json!({ "role": "uploader" });
    let routes: Vec<(Method, String, Option<&Value>)> = vec![
        (Method::POST, "/api/uploads".into(), Some(&upload)),
        (
            Method::POST,
            format!("/api/uploads/{some_id}/complete"),
            Some(&complete),
        ),
        (Method::GET, "/api/images".into(), None),
        (Method::GET, "/api/images?q=cat".into(), None),
        (Method::GET, format!("/api/images/{some_id}"), None),
        (Method::GET, "/api/tags".into(), None),
        (Method::POST, "/api/keys".into(), Some(&new_key)),
        (Method::GET, "/api/keys".into(), None),
        (Method::DELETE, format!("/api/keys/{some_id}"), None),
        (Method::GET, "/metrics".into(), None),
    ];
    let mut wrong = Vec::new();
    for (method, path, body) in routes {
        let answer = send(base, method.clone(), &path, presents, body).await;
        if answer.status != 401 || !answer.header("www-authenticate").starts_with("Bearer") {
            wrong.push(format!(
                "{method} {path}: {} (WWW-Authenticate {:?}) {}",
                answer.status,
                answer.header("www-authenticate"),
                answer.body
            ));
        }
    }
    let ready = send(base, Method::GET, "/readyz", presents, None).await;
    if ready.json().get("bus").is_some() || ready.json().get("metadata").is_some() {
        wrong.push(format!("GET /readyz gave details: {}", ready.body));
    }
    wrong
}

// ---------------------------------------------------------------------------------------------
// 1. Roles
// ---------------------------------------------------------------------------------------------

/// Every route against every kind of caller: no key, a malformed key, a well-formed key nobody
/// made, and a key of each role. Callers without a valid key get 401 (with `WWW-Authenticate:
/// Bearer`), a role below the route's 403, both with a JSON `{"error"}`; `/readyz` answers
/// everyone but details only admins; the page and health are public. Every response carries the
/// security headers. All mismatches are reported together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_is_refused_what_it_may_not_do_on_every_route() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = spawn(test_config(dir.path())).await;
    let base = running.base_url.clone();
    let admin = admin_key(dir.path());
    let (_, uploader) = key_for(&running, Role::Uploader, "default").await;
    let (_, editor) = key_for(&running, Role::Editor, "default").await;
    // Revoked by the admin column, the last to run.
    let (victim, _) = key_for(&running, Role::Uploader, "default").await;
    let unknown = imgpipe_auth::token::generate().expect("random").key;

    // An image of the tenant, done, so its routes have something to show.
    let admin_client = Client::new(&base, &admin);
    let ticket = admin_client
        .upload("cat.jpg", "image/jpeg", photo("chelsea.jpg"))
        .await;
    let doc = admin_client.wait_terminal(&ticket.image_id, DEADLINE).await;
    assert_eq!(doc["status"], "done", "{doc}");
    let keys_before = running.backends.keys.list_keys().await.expect("keys").len();

    let callers: [(&str, Presents); 6] = [
        ("no key", Presents::Nothing),
        ("malformed key", Presents::Bearer("not-a-key")),
        ("unknown key", Presents::Bearer(&unknown)),
        ("uploader", Presents::Bearer(&uploader)),
        ("editor", Presents::Bearer(&editor)),
        ("admin", Presents::Bearer(&admin)),
    ];
    let id = &ticket.image_id;
    let upload = json!({ "filename": "x.jpg", "content_type": "image/jpeg", "size": 1000 });
    let complete = json!({ "key": ticket.key });
    let new_key = json!({ "role": "uploader", "name": "made by the table" });
    const NONE: u16 = 401;
    #[rustfmt::skip]
    let table: Vec<(Method, String, Option<&Value>, [u16; 6])> = vec![
        //                                                       none  malf  unkn  upl   edit  admin
        (Method::POST, "/api/uploads".into(), Some(&upload),    [NONE, NONE, NONE, 201,  201,  201]),
        (Method::POST, format!("/api/uploads/{id}/complete"), Some(&complete),
                                                                [NONE, NONE, NONE, 202,  202,  202]),
        (Method::GET, "/api/images".into(), None,               [NONE, NONE, NONE, 403,  200,  200]),
        (Method::GET, "/api/images?q=cat".into(), None,         [NONE, NONE, NONE, 403,  200,  200]),
        (Method::GET, format!("/api/images/{id}"), None,        [NONE, NONE, NONE, 403,  200,  200]),
        (Method::GET, "/api/tags".into(), None,                 [NONE, NONE, NONE, 403,  200,  200]),
        (Method::POST, "/api/keys".into(), Some(&new_key),      [NONE, NONE, NONE, 403,  403,  201]),
        (Method::GET, "/api/keys".into(), None,                 [NONE, NONE, NONE, 403,  403,  200]),
        (Method::DELETE, format!("/api/keys/{victim}"), None,   [NONE, NONE, NONE, 403,  403,  200]),
        (Method::GET, "/metrics".into(), None,                  [NONE, NONE, NONE, 403,  403,  200]),
        (Method::GET, "/readyz".into(), None,                   [200,  200,  200,  200,  200,  200]),
        (Method::GET, "/healthz".into(), None,                  [200,  200,  200,  200,  200,  200]),
        (Method::GET, "/".into(), None,                         [200,  200,  200,  200,  200,  200]),
        (Method::GET, "/app.js".into(), None,                   [200,  200,  200,  200,  200,  200]),
        (Method::GET, "/app.css".into(), None,                  [200,  200,  200,  200,  200,  200]),
    ];

    let mut wrong = Vec::new();
    for (method, path, body, expected) in &table {
        for ((who, presents), want) in callers.iter().zip(expected) {
            let what = format!("{method} {path} as {who}");
            let answer = send(&base, method.clone(), path, *presents, *body).await;
            if answer.status != *want {
                wrong.push(format!(
                    "{what}: {} instead of {want}: {}",
                    answer.status,
                    answer.body.chars().take(200).collect::<String>()
                ));
            }
            if matches!(answer.status, 401 | 403) && !answer.json()["error"].is_string() {
                wrong.push(format!("{what}: no JSON error body: {}", answer.body));
            }
            if answer.status == 401 && !answer.header("www-authenticate").starts_with("Bearer") {
                wrong.push(format!("{what}: 401 without WWW-Authenticate: Bearer"));
            }
            wrong.extend(security_header_problems(&what, &answer.headers));
            match (path.as_str(), *who, answer.status) {
                ("/readyz", "admin", _) => {
                    let details = answer.json();
                    if details["bus"] != "ok" || details["metadata"] != "ok" {
                        wrong.push(format!("{what}: no details: {}", answer.body));
                    }
                }
                ("/readyz", _, _) => {
                    let body = answer.json();
                    if body.get("bus").is_some() || body.get("metadata").is_some() {
                        wrong.push(format!("{what}: details given: {}", answer.body));
                    }
                }
                ("/metrics", _, 200) if !answer.body.contains("messages_total") => {
                    wrong.push(format!("{what}: not the metrics: {}", answer.body));
                }
                ("/", _, 200) if !answer.body.contains("<html") => {
                    wrong.push(format!("{what}: not the page"));
                }
                (p, _, 200) if *p == format!("/api/images/{id}") && answer.json()["id"] != *id => {
                    wrong.push(format!("{what}: another document: {}", answer.body));
                }
                _ => {}
            }
        }
    }
    // Of all the key requests, only the admin's made one.
    let keys_after = running.backends.keys.list_keys().await.expect("keys");
    if keys_after.len() != keys_before + 1 {
        wrong.push(format!(
            "{} keys made by the table instead of 1",
            keys_after.len() - keys_before
        ));
    }
    if !keys_after
        .iter()
        .any(|k| k.id == victim && k.revoked_at.is_some())
    {
        wrong.push("the admin's DELETE did not revoke the key".to_owned());
    }
    assert!(
        wrong.is_empty(),
        "{} mismatches:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    common::wait_idle(&running, DEADLINE).await;
    running.stop().await.expect("clean stop");
}

// ---------------------------------------------------------------------------------------------
// 2. Tenants
// ---------------------------------------------------------------------------------------------

/// Tenants `a` and `b` each upload the same photo under the same name, so that a leak would show
/// in every list, search, tag filter and tag count. Each sees only its own image; the other's id
/// is 404; nothing any of b's requests returns mentions a's image or its renditions. The admin of
/// both sees both (the control that the filters do find the images).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_cannot_see_each_others_images() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = spawn(test_config(dir.path())).await;
    let base = running.base_url.clone();
    let (_, both) = make_key(
        running.backends.keys.as_ref(),
        Role::Admin,
        vec!["a".to_owned(), "b".to_owned()],
        "admin of a and b",
    )
    .await
    .expect("key made");
    let admin = Client::new(&base, &both);

    // An admin makes keys only for its own tenants.
    let default_admin = Client::new(&base, &admin_key(dir.path()));
    for (who, client, tenant) in [
        ("admin of default", &default_admin, "a"),
        ("admin of a and b", &admin, "c"),
    ] {
        let res = client
            .api(Method::POST, "/api/keys")
            .json(&json!({ "role": "editor", "tenant": tenant }))
            .send()
            .await
            .expect("API reachable");
        assert_eq!(res.status(), 403, "{who} made a key for tenant {tenant}");
        assert!(res.json::<Value>().await.expect("json")["error"].is_string());
    }
    let mut editors = Vec::new();
    for tenant in ["a", "b"] {
        let res = admin
            .api(Method::POST, "/api/keys")
            .json(&json!({ "role": "editor", "tenant": tenant, "name": format!("editor of {tenant}") }))
            .send()
            .await
            .expect("API reachable");
        assert_eq!(res.status(), 201, "editor key for {tenant}");
        let made: Value = res.json().await.expect("json");
        assert_eq!(made["details"]["tenants"], json!([tenant]), "{made}");
        assert_eq!(made["details"]["role"], "editor", "{made}");
        assert!(made["details"].get("hash").is_none(), "hash shown: {made}");
        editors.push(Client::new(
            &base,
            made["key"].as_str().expect("the key, shown once"),
        ));
    }
    let (a, b) = (&editors[0], &editors[1]);

    let ta = a
        .upload("cat.jpg", "image/jpeg", photo("chelsea.jpg"))
        .await;
    let tb = b
        .upload("cat.jpg", "image/jpeg", photo("chelsea.jpg"))
        .await;
    assert!(
        ta.key.starts_with(&format!("a/{}/", ta.image_id)),
        "{}",
        ta.key
    );
    assert!(
        tb.key.starts_with(&format!("b/{}/", tb.image_id)),
        "{}",
        tb.key
    );
    let da = a.wait_terminal(&ta.image_id, DEADLINE).await;
    let db = b.wait_terminal(&tb.image_id, DEADLINE).await;
    for (doc, tenant) in [(&da, "a"), (&db, "b")] {
        assert_eq!(doc["status"], "done", "{doc}");
        assert_eq!(doc["tenant"], tenant, "{doc}");
    }
    // The same photo gets the same tags: a label both carry.
    let label = labels(&da).first().cloned().expect("a's image has tags");
    assert!(labels(&db).contains(&label), "{da}\n{db}");

    // a's renditions, as a's document names them; a can load them.
    let a_renditions: Vec<(String, String)> = ["thumb", "preview"]
        .iter()
        .map(|which| {
            let r = &da["renditions"][*which];
            (
                r["key"].as_str().expect("rendition key").to_owned(),
                r["url"].as_str().expect("rendition url").to_owned(),
            )
        })
        .collect();
    for (key, url) in &a_renditions {
        assert!(url.contains(&format!("/{key}?")), "{url} is not of {key}");
        let res = http().get(url).send().await.expect("store reachable");
        assert_eq!(res.status(), 200, "a loads its rendition {key}");
    }

    for (me, mine, other, other_key) in [
        (a, &ta.image_id, &tb.image_id, &tb.key),
        (b, &tb.image_id, &ta.image_id, &ta.key),
    ] {
        let mut seen = String::new();
        for query in [
            vec![],
            vec![("q", "cat")],
            vec![("q", label.as_str())],
            vec![("tag", label.as_str())],
            vec![("status", "done")],
        ] {
            let (ids, body) = list_ids(me, &query).await;
            assert_eq!(ids, vec![mine.clone()], "list {query:?}");
            seen.push_str(&body);
        }
        let (count, body) = tag_count(me, &label).await;
        assert_eq!(count, 1, "{label} counted across tenants: {body}");
        seen.push_str(&body);

        let res = me
            .api(Method::GET, &format!("/api/images/{other}"))
            .send()
            .await
            .expect("API reachable");
        assert_eq!(res.status(), 404, "the other tenant's image");
        // Nothing but an error: not the owner, not the document.
        let body: Value = res.json().await.expect("json");
        assert!(body["error"].is_string(), "{body}");
        assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{body}");

        // Completing the other tenant's upload is refused too.
        let res = me
            .api(Method::POST, &format!("/api/uploads/{other}/complete"))
            .json(&json!({ "key": other_key }))
            .send()
            .await
            .expect("API reachable");
        assert!(
            res.status().is_client_error(),
            "completed the other tenant's upload: {}",
            res.status()
        );

        // Nothing returned names the other image.
        assert!(!seen.contains(other.as_str()), "{seen}");
        if me.key == b.key {
            for (key, url) in &a_renditions {
                assert!(!seen.contains(key.as_str()), "b saw a's {key}");
                let signature = url.split("X-Amz-Signature=").nth(1).unwrap_or(url);
                assert!(!seen.contains(signature), "b got a's URL for {key}");
            }
        }
    }

    // The admin of both tenants sees both: the filters above did find the images.
    let (ids, _) = list_ids(&admin, &[("tag", label.as_str())]).await;
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&ta.image_id) && ids.contains(&tb.image_id));
    assert_eq!(tag_count(&admin, &label).await.0, 2);

    // Every object of a's image is under a's prefix, so a storage policy can follow tenants.
    for (key, _) in &a_renditions {
        assert!(
            key.starts_with("a/"),
            "rendition key {key:?} of tenant a's image is not under a/"
        );
    }
    running.stop().await.expect("clean stop");
}

// ---------------------------------------------------------------------------------------------
// 3. Revocation
// ---------------------------------------------------------------------------------------------

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
    let metadata = common::engines::fresh_postgres();
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

// ---------------------------------------------------------------------------------------------
// 4. The embedded S3 endpoint
// ---------------------------------------------------------------------------------------------

/// The credentials every installation once shared (`imgpipe` / `imgpipe-local-secret`) open
/// nothing: list, get, put, and URLs presigned with them are 403. Without a signature nothing is
/// read. A presigned PUT cannot be used again, turned into a copy, or pointed at another key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_s3_credentials_and_misused_upload_urls_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = test_config(dir.path());
    let bucket = config.object_store.originals_bucket.clone();
    let running = spawn(config).await;
    let base = running.base_url.clone();
    let client = Client::new(&base, &admin_key(dir.path()));
    let bytes = photo("chelsea.jpg");
    let ticket = client.upload("cat.jpg", "image/jpeg", bytes.clone()).await;

    let creds: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("s3-credentials.json")).expect("S3 credentials"),
    )
    .expect("json");
    let (access, secret) = (
        creds["access_key"].as_str().expect("access key"),
        creds["secret_key"].as_str().expect("secret key"),
    );
    assert_ne!(access, "imgpipe");
    assert_ne!(secret, "imgpipe-local-secret");
    let own = s3(&base, access, secret);
    // The control: the pipeline's own credentials read the original.
    let got = own
        .get_object()
        .bucket(&bucket)
        .key(&ticket.key)
        .send()
        .await
        .expect("the pipeline's credentials read the original");
    assert_eq!(got.body.collect().await.expect("body").to_vec(), bytes);

    let old = s3(&base, "imgpipe", "imgpipe-local-secret");
    let planted = "default/00000000-0000-7000-8000-000000000000/planted.jpg";
    let refused = [
        (
            "ListBuckets",
            refusal("ListBuckets", old.list_buckets().send().await),
        ),
        (
            "ListObjectsV2",
            refusal(
                "ListObjectsV2",
                old.list_objects_v2().bucket(&bucket).send().await,
            ),
        ),
        (
            "GetObject",
            refusal(
                "GetObject",
                old.get_object()
                    .bucket(&bucket)
                    .key(&ticket.key)
                    .send()
                    .await,
            ),
        ),
        (
            "PutObject",
            refusal(
                "PutObject",
                old.put_object()
                    .bucket(&bucket)
                    .key(planted)
                    .body(ByteStream::from(bytes.clone()))
                    .send()
                    .await,
            ),
        ),
    ];
    for (op, (status, code)) in &refused {
        assert_eq!(*status, 403, "{op} with the old credentials: {code}");
        assert!(
            matches!(
                code.as_str(),
                // s3s answers an unknown access key with NotSignedUp (AWS: InvalidAccessKeyId).
                "InvalidAccessKeyId" | "NotSignedUp" | "AccessDenied" | "SignatureDoesNotMatch"
            ),
            "{op}: {code}"
        );
    }
    assert!(
        !exists(&own, &bucket, planted).await,
        "the old credentials wrote"
    );
    let presigned = old
        .get_object()
        .bucket(&bucket)
        .key(&ticket.key)
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).expect("ttl"))
        .await
        .expect("presign");
    let res = http().get(presigned.uri()).send().await.expect("reachable");
    assert_eq!(res.status(), 403, "GET presigned with the old credentials");

    // No signature, no object.
    let unsigned = http()
        .get(format!("{base}/{bucket}/{}", ticket.key))
        .send()
        .await
        .expect("reachable");
    assert_eq!(unsigned.status(), 403, "unsigned GET of an original");
    let unsigned = http()
        .put(format!("{base}/{bucket}/{planted}"))
        .header("content-type", "image/jpeg")
        .body(bytes.clone())
        .send()
        .await
        .expect("reachable");
    assert_eq!(unsigned.status(), 403, "unsigned PUT");
    assert!(
        !exists(&own, &bucket, planted).await,
        "the unsigned PUT wrote"
    );

    // The used upload URL, again, with other bytes of the same length: refused, object kept.
    let other_bytes: Vec<u8> = bytes.iter().rev().copied().collect();
    let again = put_to(&ticket, &ticket.url, &[], other_bytes.clone()).await;
    assert_eq!(again.status, 403, "upload URL used twice: {}", again.body);
    let kept = own
        .get_object()
        .bucket(&bucket)
        .key(&ticket.key)
        .send()
        .await
        .expect("original");
    assert_eq!(kept.body.collect().await.expect("body").to_vec(), bytes);

    // A fresh upload URL turned into a copy of the original: refused, nothing copied.
    let fresh: Ticket = client
        .request_upload("copy.jpg", "image/jpeg", bytes.len())
        .await
        .json()
        .await
        .expect("ticket");
    let source = format!("/{bucket}/{}", ticket.key);
    let copy = put_to(
        &fresh,
        &fresh.url,
        &[("x-amz-copy-source", &source)],
        bytes.clone(),
    )
    .await;
    assert_eq!(copy.status, 403, "upload URL as a copy: {}", copy.body);
    assert!(!exists(&own, &bucket, &fresh.key).await, "copied");

    // The same fresh URL pointed at another key: refused, nothing written there.
    let elsewhere_id = uuid::Uuid::now_v7().to_string();
    let elsewhere_key = fresh.key.replace(&fresh.image_id, &elsewhere_id);
    let elsewhere_url = fresh.url.replace(&fresh.image_id, &elsewhere_id);
    assert_ne!(elsewhere_url, fresh.url);
    let moved = put_to(&fresh, &elsewhere_url, &[], bytes.clone()).await;
    assert_eq!(
        moved.status, 403,
        "upload URL at another key: {}",
        moved.body
    );
    assert!(
        !exists(&own, &bucket, &elsewhere_key).await,
        "written elsewhere"
    );

    // The control: the fresh URL itself still works, once.
    let put = put_to(&fresh, &fresh.url, &[], bytes.clone()).await;
    assert_eq!(put.status, 200, "the fresh URL as issued: {}", put.body);
    common::wait_idle(&running, DEADLINE).await;
    running.stop().await.expect("clean stop");
}

// ---------------------------------------------------------------------------------------------
// 5. Rate limits
// ---------------------------------------------------------------------------------------------

/// With `upload.rate_per_minute = 3` and `access.rate_per_minute = 5`, one key's 4th upload
/// request and 6th list request are 429 with `Retry-After`, while another key (from the same
/// address) is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_and_queries_are_rate_limited_per_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.upload.rate_per_minute = 3;
    config.access.rate_per_minute = 5;
    let running = spawn(config).await;
    let base = running.base_url.clone();
    let one = Client::new(&base, &key_for(&running, Role::Editor, "default").await.1);
    let other = Client::new(&base, &key_for(&running, Role::Editor, "default").await.1);

    let mut wrong = Vec::new();
    let mut refused_with_retry = |what: &str, answer: &Answer| {
        let wait: Option<u64> = answer.header("retry-after").parse().ok();
        if answer.status != 429 || !wait.is_some_and(|w| (1..=60).contains(&w)) {
            wrong.push(format!(
                "{what}: {} with Retry-After {:?}: {}",
                answer.status,
                answer.header("retry-after"),
                answer.body
            ));
        } else if !answer.json()["error"].is_string() {
            wrong.push(format!("{what}: no JSON error: {}", answer.body));
        }
    };
    let upload = json!({ "filename": "a.jpg", "content_type": "image/jpeg", "size": 1000 });
    for i in 1..=3 {
        let answer = send(
            &base,
            Method::POST,
            "/api/uploads",
            Presents::Bearer(&one.key),
            Some(&upload),
        )
        .await;
        assert_eq!(answer.status, 201, "upload request {i}: {}", answer.body);
    }
    let fourth = send(
        &base,
        Method::POST,
        "/api/uploads",
        Presents::Bearer(&one.key),
        Some(&upload),
    )
    .await;
    refused_with_retry("4th upload request", &fourth);
    let answer = send(
        &base,
        Method::POST,
        "/api/uploads",
        Presents::Bearer(&other.key),
        Some(&upload),
    )
    .await;
    assert_eq!(answer.status, 201, "another key's upload: {}", answer.body);

    for i in 1..=5 {
        let answer = send(
            &base,
            Method::GET,
            "/api/images",
            Presents::Bearer(&one.key),
            None,
        )
        .await;
        assert_eq!(answer.status, 200, "list request {i}: {}", answer.body);
    }
    let sixth = send(
        &base,
        Method::GET,
        "/api/images",
        Presents::Bearer(&one.key),
        None,
    )
    .await;
    refused_with_retry("6th list request", &sixth);
    let answer = send(
        &base,
        Method::GET,
        "/api/images",
        Presents::Bearer(&other.key),
        None,
    )
    .await;
    assert_eq!(answer.status, 200, "another key's list: {}", answer.body);

    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    running.stop().await.expect("clean stop");
}

// ---------------------------------------------------------------------------------------------
// 6. Sign-in, the page, security headers
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// 7. Safe by default
// ---------------------------------------------------------------------------------------------

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
