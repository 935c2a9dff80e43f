//! Helpers shared by the access-control tests.

pub(crate) use std::path::Path;
pub(crate) use std::process::Stdio;
pub(crate) use std::time::Duration;

pub(crate) use crate::common::{
    Client, Ticket, admin_key, labels, photo, repo_root, spawn, test_config,
};
pub(crate) use aws_sdk_s3::config::http::HttpResponse;
pub(crate) use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
pub(crate) use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
pub(crate) use aws_sdk_s3::presigning::PresigningConfig;
pub(crate) use aws_sdk_s3::primitives::ByteStream;
pub(crate) use imgpipe::Running;
pub(crate) use imgpipe_auth::CACHE_TTL;
pub(crate) use imgpipe_auth::keys_api::make_key;
pub(crate) use imgpipe_contract::config::MetadataConfig;
pub(crate) use imgpipe_contract::keys::Role;
pub(crate) use imgpipe_db_postgres::PostgresDb;
pub(crate) use reqwest::Method;
pub(crate) use reqwest::header::HeaderMap;
pub(crate) use serde_json::{Value, json};
pub(crate) use tokio::io::{AsyncBufReadExt, BufReader};
pub(crate) use tokio::process::{Child, Command};

/// Longest a photo may take through the pipeline on a busy two-core machine.
pub(crate) const DEADLINE: Duration = Duration::from_secs(120);
/// Longest the binary may take to start (it loads the recognizer's models) or to refuse to.
pub(crate) const START_DEADLINE: Duration = Duration::from_secs(120);

/// A key made in code, straight in the pipeline's key store.
pub(crate) async fn key_for(running: &Running, role: Role, tenant: &str) -> (String, String) {
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
pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

/// How a request presents its key.
#[derive(Clone, Copy)]
pub(crate) enum Presents<'a> {
    Nothing,
    Bearer(&'a str),
    Cookie(&'a str),
}

/// A response read whole.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

pub(crate) async fn send(
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
    let mut res = req.send().await.expect("pipeline reachable");
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    let streams = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    // An event stream never ends: its first event is the answer.
    let body = if streams {
        match tokio::time::timeout(Duration::from_secs(10), res.chunk()).await {
            Ok(Ok(Some(chunk))) => String::from_utf8_lossy(&chunk).into_owned(),
            _ => String::new(),
        }
    } else {
        res.text().await.unwrap_or_default()
    };
    Answer {
        status,
        headers,
        body,
    }
}

/// What is wrong with a response's security headers, if anything.
pub(crate) fn security_header_problems(what: &str, headers: &HeaderMap) -> Vec<String> {
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
pub(crate) async fn list_ids(client: &Client, query: &[(&str, &str)]) -> (Vec<String>, String) {
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
pub(crate) async fn tag_count(client: &Client, label: &str) -> (u64, String) {
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
pub(crate) fn imgpipe() -> Command {
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
pub(crate) async fn wait_until_up(child: &mut Child) -> Result<String, String> {
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
pub(crate) async fn keys_cli(data_dir: &Path, args: &[&str]) -> String {
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
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// An S3 client of the pipeline's embedded endpoint with the given credentials.
pub(crate) fn s3(endpoint: &str, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
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
pub(crate) fn refusal<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
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
pub(crate) async fn exists(store: &aws_sdk_s3::Client, bucket: &str, key: &str) -> bool {
    match store.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => true,
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => false,
        Err(e) => panic!("HEAD {bucket}/{key} with the pipeline's credentials failed: {e:?}"),
    }
}

/// A presigned PUT of a ticket with `extra` headers and a body of the declared length.
pub(crate) async fn put_to(
    ticket: &Ticket,
    url: &str,
    extra: &[(&str, &str)],
    body: Vec<u8>,
) -> Answer {
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
pub(crate) async fn not_refused(base: &str, presents: Presents<'_>) -> Vec<String> {
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
