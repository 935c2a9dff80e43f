//! `POST /api/uploads`: validate the declared file, sign a PUT for one new key.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use imgpipe_auth::Principal;
use imgpipe_contract::event::OriginalKey;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::filename::{filename_budget, sanitize_filename};
use crate::routes::{UploadState, refuse};

#[derive(Debug, Deserialize)]
pub(crate) struct UploadRequest {
    filename: String,
    content_type: String,
    size: u64,
}

#[derive(Debug, Serialize)]
struct UploadTicket {
    image_id: String,
    key: String,
    url: String,
    method: String,
    /// Headers the client must send with the PUT, exactly (they are signed).
    headers: BTreeMap<String, String>,
    expires_at: DateTime<Utc>,
}

pub(crate) async fn create(
    State(state): State<UploadState>,
    caller: Principal,
    body: Option<Json<UploadRequest>>,
) -> Response {
    let Some(Json(req)) = body else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "expected JSON {filename, content_type, size}",
        );
    };
    let content_type = req.content_type.trim().to_ascii_lowercase();
    if !state.limits.allowed_types.contains(&content_type) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "content type {content_type:?} is not accepted; allowed: {}",
                state.limits.allowed_types.join(", ")
            ),
        );
    }
    if req.size == 0 {
        return refuse(StatusCode::BAD_REQUEST, "size must be greater than zero");
    }
    if req.size > state.limits.max_bytes {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} bytes is over the {} byte limit",
                req.size, state.limits.max_bytes
            ),
        );
    }
    if let Some(refused) = crate::quota::check(&state, caller.home_tenant(), req.size).await {
        return refused;
    }
    let image_id = uuid::Uuid::now_v7().to_string();
    // The tenant is part of the key: every stage and any storage policy can follow it.
    let prefix = OriginalKey::format(caller.home_tenant(), &image_id, "");
    let filename = sanitize_filename(&req.filename, filename_budget(&state.bucket, &prefix));
    let key = OriginalKey::format(caller.home_tenant(), &image_id, &filename);
    let ttl = Duration::from_secs(state.limits.url_ttl_secs);
    match state
        .store
        .presign_put(&state.bucket, &key, &content_type, req.size, ttl)
        .await
    {
        Ok(signed) => {
            let recorded = state
                .db
                .record_upload(&image_id, caller.home_tenant(), &caller.key_id)
                .await;
            if let Err(e) = recorded {
                warn!(error = %e, "cannot record the upload");
                return refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "metadata database unavailable",
                );
            }
            info!(%image_id, %key, size = req.size, key_id = %caller.key_id, "upload URL issued");
            let ticket = UploadTicket {
                image_id,
                key,
                url: signed.url,
                method: signed.method,
                headers: signed
                    .headers
                    .into_iter()
                    // Browsers set these themselves and refuse scripts that try.
                    .filter(|(name, _)| {
                        !name.eq_ignore_ascii_case("content-length")
                            && !name.eq_ignore_ascii_case("host")
                    })
                    .collect(),
                expires_at: signed.expires_at,
            };
            (StatusCode::CREATED, Json(ticket)).into_response()
        }
        Err(e) => {
            warn!(error = %e, "presigning failed");
            refuse(StatusCode::SERVICE_UNAVAILABLE, "object store unavailable")
        }
    }
}
