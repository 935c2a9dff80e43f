use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use imgpipe_contract::bus::Bus;
use imgpipe_contract::config::UploadConfig;
use imgpipe_contract::store::ObjectStore;
use serde_json::json;

use crate::rate::RateLimiter;
use crate::{complete, create};

#[derive(Clone)]
pub struct UploadState {
    pub store: Arc<dyn ObjectStore>,
    /// Publishes the object-created event of `POST /api/uploads/{id}/complete`.
    pub bus: Arc<dyn Bus>,
    pub bucket: String,
    /// Region named in the events this API publishes.
    pub region: String,
    pub limits: UploadConfig,
}

/// The upload routes. Serve them with `into_make_service_with_connect_info::<SocketAddr>()` so
/// the rate limit is per client address (without it, all clients share one bucket).
pub fn router(state: UploadState) -> axum::Router {
    let limiter = Arc::new(RateLimiter::per_minute(state.limits.rate_per_minute));
    axum::Router::new()
        .route("/api/uploads", post(create::create))
        .route("/api/uploads/{id}/complete", post(complete::complete))
        .route_layer(middleware::from_fn_with_state(limiter, limit_rate))
        .with_state(state)
}

async fn limit_rate(
    State(limiter): State<Arc<RateLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    match limiter.check(client) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let mut refused = refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "too many upload requests from this address; retry later",
            );
            let secs = wait.as_secs().max(1).to_string();
            if let Ok(value) = HeaderValue::from_str(&secs) {
                refused.headers_mut().insert(header::RETRY_AFTER, value);
            }
            refused
        }
    }
}

/// The 401 to send when a bearer token is configured and the request lacks it.
pub(crate) fn unauthorized(state: &UploadState, headers: &HeaderMap) -> Option<Response> {
    let token = state.limits.token.as_ref()?;
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    (presented != Some(token.as_str()))
        .then(|| refuse(StatusCode::UNAUTHORIZED, "missing or wrong bearer token"))
}

/// A JSON error body with `status`.
pub(crate) fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}
