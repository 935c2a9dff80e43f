//! The page, health and readiness endpoints, and the hand-off of S3 requests to the embedded
//! endpoint that shares this listener.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use imgpipe_auth::{Denied, presented_key};
use std::time::Duration;

use imgpipe_contract::config::{AccessConfig, ServerConfig};
use imgpipe_contract::keys::Role;
use serde_json::json;
use tower::ServiceExt;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use crate::backends::Backends;
use crate::roles::Roles;

const PAGE: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/app.js");
const STYLE: &str = include_str!("page/app.css");

/// The page's ES modules (`/ui/{name}`), which `app.js` imports.
const MODULES: &[(&str, &str)] = &[
    ("api.js", include_str!("page/api.js")),
    ("detail.js", include_str!("page/detail.js")),
    ("doc.js", include_str!("page/doc.js")),
    ("dom.js", include_str!("page/dom.js")),
    ("facets.js", include_str!("page/facets.js")),
    ("filters.js", include_str!("page/filters.js")),
    ("grid.js", include_str!("page/grid.js")),
    ("live.js", include_str!("page/live.js")),
    ("state.js", include_str!("page/state.js")),
    ("thumbhash.js", include_str!("page/thumbhash.js")),
    ("uploads.js", include_str!("page/uploads.js")),
];

/// For working on the page: serve its files from this directory instead of the binary, so an
/// edit shows on reload without a rebuild.
const PAGE_DIR_ENV: &str = "IMGPIPE_PAGE_DIR";

/// A page file: from [`PAGE_DIR_ENV`] when set, else as built in.
fn page_file(name: &str, built_in: &'static str) -> std::borrow::Cow<'static, str> {
    match std::env::var_os(PAGE_DIR_ENV) {
        Some(dir) => std::fs::read_to_string(std::path::Path::new(&dir).join(name))
            .map(std::borrow::Cow::Owned)
            .unwrap_or(std::borrow::Cow::Borrowed(built_in)),
        None => std::borrow::Cow::Borrowed(built_in),
    }
}

#[derive(Clone)]
struct WebState {
    backends: Backends,
    s3: Option<axum::Router>,
    /// Queues whose depth `/metrics` reports (those this process consumes).
    queues: Vec<String>,
}

/// Health, readiness, and (for the upload role) the page; `s3` answers a signed `GET /`
/// (ListBuckets), see [`with_s3`] for the rest.
pub fn router(
    backends: &Backends,
    roles: Roles,
    access: &AccessConfig,
    s3: Option<axum::Router>,
) -> axum::Router {
    let state = WebState {
        backends: backends.clone(),
        s3,
        queues: roles.consumed_queues(),
    };
    let mut app = axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics));
    if roles.upload_api {
        // Browsers ask for it unprompted; without this route the request would reach the S3
        // endpoint as an unsigned bucket read and be logged there as an error.
        app = app
            .route("/", get(index).head(index))
            .route("/app.js", get(script))
            .route("/app.css", get(style))
            .route("/ui/{name}", get(module))
            .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }));
    }
    let mut app = app.with_state(state);
    if roles.upload_api || roles.metadata_store {
        app = app.merge(crate::session::router(backends.auth.clone(), access));
    }
    app
}

/// Every route so far must answer within `server.request_timeout_secs` (408 otherwise), and no
/// request body may pause longer than `server.body_idle_timeout_secs`; every `/api/` path that
/// no route took is a JSON 404, and every error under `/api/` is JSON.
pub fn limit_time(app: axum::Router, server: &ServerConfig) -> axum::Router {
    app.route("/api", axum::routing::any(no_such_route))
        .route("/api/", axum::routing::any(no_such_route))
        .route("/api/{*rest}", axum::routing::any(no_such_route))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(server.request_timeout_secs),
        ))
        .layer(RequestBodyTimeoutLayer::new(Duration::from_secs(
            server.body_idle_timeout_secs,
        )))
        .layer(axum::middleware::from_fn(json_errors))
}

/// `s3`, when given, becomes the fallback for every other path: the embedded S3 endpoint
/// (path-style `/<bucket>/<key>`). Its uploads may take longer than an API request and bound
/// their bodies themselves (the presigned URL's expiry); it reads `Content-Length` from the
/// body, so no wrapper may hide it.
pub fn with_s3(app: axum::Router, s3: Option<axum::Router>) -> axum::Router {
    match s3 {
        Some(s3) => app.fallback_service(s3),
        None => app,
    }
}

/// `GET /` is both the page and S3's ListBuckets: a signed request is S3's.
async fn index(State(state): State<WebState>, request: Request) -> Response {
    // Only a SigV4 signature makes it S3's: a Bearer key (or a proxy's Basic credentials) on a
    // request for the page is still a request for the page.
    let signed = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256"))
        || request
            .uri()
            .query()
            .is_some_and(|q| q.contains("X-Amz-Signature"));
    match (signed, state.s3) {
        (true, Some(s3)) => match s3.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        _ => page_response(request.headers()),
    }
}

fn page_response(_headers: &HeaderMap) -> Response {
    let page = page_file("index.html", PAGE);
    ([(header::CACHE_CONTROL, "no-cache")], Html(page)).into_response()
}

async fn script() -> Response {
    let headers = [
        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    (headers, page_file("app.js", SCRIPT)).into_response()
}

async fn style() -> Response {
    let headers = [
        (header::CONTENT_TYPE, "text/css; charset=utf-8"),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    (headers, page_file("app.css", STYLE)).into_response()
}

/// One of the page's modules: built in, or from [`PAGE_DIR_ENV`] when set (any `*.js` there, so
/// a new module works before it is listed in [`MODULES`]).
async fn module(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let plain = name.ends_with(".js")
        && name
            .trim_end_matches(".js")
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let built_in = MODULES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, body)| *body);
    let body = match (plain, std::env::var_os(PAGE_DIR_ENV), built_in) {
        (false, _, _) => None,
        (true, Some(dir), _) => {
            std::fs::read_to_string(std::path::Path::new(&dir).join(&name)).ok()
        }
        (true, None, Some(body)) => Some(body.to_owned()),
        (true, None, None) => None,
    };
    match body {
        Some(body) => {
            let headers = [
                (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ];
            (headers, body).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Every answer under `/api/` is JSON: an unknown route (never the S3 endpoint's XML), a
/// method the route does not have, and the framework's own refusals (a body or query it
/// cannot read, a timeout) get `{"error": ...}`; an unreadable body is a 400, as a missing field
/// is.
pub async fn json_errors(request: Request, next: axum::middleware::Next) -> Response {
    if !request.uri().path().starts_with("/api/") && request.uri().path() != "/api" {
        return next.run(request).await;
    }
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/event-stream"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let status = match status {
        StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
        other => other,
    };
    let message = if text.is_empty() {
        match status {
            StatusCode::METHOD_NOT_ALLOWED => "this route does not take that method".to_owned(),
            StatusCode::REQUEST_TIMEOUT => "the request took too long".to_owned(),
            other => other
                .canonical_reason()
                .unwrap_or("request failed")
                .to_lowercase(),
        }
    } else {
        text
    };
    let mut json = (status, Json(json!({ "error": message }))).into_response();
    // Keep what the refusal said besides its body (Allow on a 405, Retry-After on a 429).
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            json.headers_mut().insert(name.clone(), value.clone());
        }
    }
    json
}

/// An unknown route under `/api/`.
async fn no_such_route(request: Request) -> Response {
    let path = request.uri().path().to_owned();
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": format!("no route {path}") })),
    )
        .into_response()
}

/// Prometheus text format; queue depths are read at scrape time. Admins only (a scraper sends
/// `Authorization: Bearer KEY`): queue names, rates and failures tell an outsider too much.
async fn metrics(State(state): State<WebState>, headers: HeaderMap) -> Response {
    if let Err(denied) = admin(&state, &headers).await {
        return denied.into_response();
    }
    for queue in &state.queues {
        if let Ok(depth) = state.backends.bus.queue_depth(queue).await {
            state.backends.metrics.set_queue_depth(queue, depth);
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.backends.metrics.render(),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

/// Whether the request carries an admin key (always, with access control off).
async fn admin(state: &WebState, headers: &HeaderMap) -> Result<(), Denied> {
    let auth = &state.backends.auth;
    auth.check(presented_key(headers))
        .await?
        .require(Role::Admin)
}

/// Ready when the bus and the metadata database answer. Everyone gets the status code (load
/// balancers and probes carry no key); only admins get the details, which name the engines and
/// their errors.
async fn readyz(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let bus = state.backends.bus.ping().await;
    let meta = state.backends.db.ping().await;
    let status = if bus.is_ok() && meta.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let describe = |r: Result<(), String>| r.err().unwrap_or_else(|| "ok".to_owned());
    if admin(&state, &headers).await.is_err() {
        let word = if status == StatusCode::OK {
            "ready"
        } else {
            "not ready"
        };
        return (status, Json(json!({ "status": word }))).into_response();
    }
    let body = json!({
        "bus": describe(bus.map_err(|e| e.to_string())),
        "metadata": describe(meta.map_err(|e| e.to_string())),
    });
    (status, Json(body)).into_response()
}
