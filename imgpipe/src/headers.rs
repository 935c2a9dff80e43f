//! CORS for the web apps the config allows, and security headers on every response: the page's script and styles come only from this origin
//! (no inline script), nothing may frame it, browsers must not guess content types, and no
//! address leaks to other sites in a Referer.

use axum::extract::Request;
use axum::http::Method;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use imgpipe_contract::config::AccessConfig;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// `img-src` allows `data:` (ThumbHash placeholders) and any http(s) origin, since renditions
/// may be served by an external S3 endpoint; `connect-src` likewise for presigned uploads.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                   img-src 'self' data: http: https:; connect-src 'self' http: https:; \
                   object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Wraps the whole router: CORS for `access.cors_origins` (preflights answered here, before any
/// key check), then the security headers.
pub fn layer(app: axum::Router, access: &AccessConfig) -> axum::Router {
    let mut app = app.layer(axum::middleware::from_fn(security_headers));
    let origins: Vec<HeaderValue> = access
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    if !origins.is_empty() {
        app = app.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([
                    Method::GET,
                    Method::POST,
                    Method::PUT,
                    Method::PATCH,
                    Method::DELETE,
                    Method::HEAD,
                ])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
                .max_age(std::time::Duration::from_secs(600)),
        );
    }
    app
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in set {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}
