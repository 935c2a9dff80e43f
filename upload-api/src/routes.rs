use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use imgpipe_auth::rate::{RateLimiter, limit_rate};
use imgpipe_auth::{Authenticator, authenticate};
use std::path::PathBuf;

use imgpipe_contract::bus::Bus;
use imgpipe_contract::config::UploadConfig;
use imgpipe_contract::db::MetadataDb;
use imgpipe_contract::store::ObjectStore;
use serde_json::json;

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
    /// For the tenants' usage (quotas).
    pub db: Arc<dyn MetadataDb>,
    /// The embedded mode's data directory, whose free space is checked; None with an external
    /// object store.
    pub data_dir: Option<PathBuf>,
    /// `POST /api/uploads/{id}/complete` calls a minute per key, besides the upload limit; 0
    /// disables it (see [`crate::COMPLETE_PER_MINUTE`]).
    pub complete_per_minute: u32,
}

/// The upload routes, for any key (uploaders and up), behind the key check of `auth` and a
/// per-key rate limit (and `/complete` behind one more of its own). Serve them with
/// `into_make_service_with_connect_info::<SocketAddr>()`.
pub fn router(state: UploadState, auth: Authenticator) -> axum::Router {
    let limiter = Arc::new(RateLimiter::per_minute(state.limits.rate_per_minute));
    let complete_limiter = Arc::new(RateLimiter::per_minute(state.complete_per_minute));
    axum::Router::new()
        .route("/api/uploads", post(create::create))
        .route(
            "/api/uploads/{id}/complete",
            post(complete::complete)
                .route_layer(middleware::from_fn_with_state(complete_limiter, limit_rate)),
        )
        .route_layer(middleware::from_fn_with_state(limiter, limit_rate))
        .route_layer(middleware::from_fn_with_state(auth, authenticate))
        .with_state(state)
}

/// A JSON error body with `status`.
pub(crate) fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}
