//! The one error shape of the query API: `{"error": "..."}` with the status that fits.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use imgpipe_contract::db::DbError;
use imgpipe_contract::store::StoreError;
use serde_json::json;
use tracing::warn;

#[derive(Debug)]
pub enum ApiError {
    Message(StatusCode, String),
    /// The key check's own answer (401, 403, 503), as every other route gives it.
    Denied(imgpipe_auth::Denied),
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError::Message(status, message.into())
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(id: &str) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, format!("no image {id}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Message(status, error) => {
                (status, Json(json!({ "error": error }))).into_response()
            }
            ApiError::Denied(denied) => denied.into_response(),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::InvalidQuery(m) => ApiError::bad_request(m),
            other => {
                warn!(error = %other, "metadata query failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "metadata store unavailable",
                )
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_not_found() {
            return ApiError::new(StatusCode::NOT_FOUND, "no such rendition");
        }
        warn!(error = %e, "object store request failed");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "object store unavailable")
    }
}

impl From<imgpipe_auth::Denied> for ApiError {
    fn from(denied: imgpipe_auth::Denied) -> Self {
        ApiError::Denied(denied)
    }
}
