//! `POST /api/uploads/{id}/complete`: for object stores that cannot notify (AWS S3 without a
//! bridge, Garage), the client reports its finished upload; we HEAD the object and publish the
//! same `ObjectCreated` event a notifying store would, unless the metadata store already has
//! these very bytes (same eTag) done or under way: completing is idempotent, so a retrying
//! client cannot make the whole pipeline run again. It has its own per-key rate limit besides
//! the upload one ([`COMPLETE_PER_MINUTE`]).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use imgpipe_auth::Principal;
use imgpipe_contract::document::Status;
use imgpipe_contract::event::{
    CreatedObject, OriginalKey, S3EventRecord, object_created_message, sequencer_at,
};
use serde::Deserialize;
use serde_json::json;
use tracing::{info, warn};

use crate::routes::{UploadState, refuse};

#[derive(Debug, Deserialize)]
pub(crate) struct CompleteRequest {
    /// The `key` of the upload ticket.
    key: String,
}

/// `/complete` calls a minute per key (bursting to as many), on top of the upload limit: above
/// the rate a scale test announces its uploads at (60 photos at once) and below what re-running
/// the pipeline on failed images in a loop would take.
pub const COMPLETE_PER_MINUTE: u32 = 120;
// The scale test announces 60 photos through `/complete` with one key, at once.
const _: () = assert!(COMPLETE_PER_MINUTE >= 80);

/// The `/complete` limit for an upload limit of `rate_per_minute`: none when limits are off (0).
pub(crate) fn complete_per_minute(rate_per_minute: u32) -> u32 {
    if rate_per_minute == 0 {
        0
    } else {
        COMPLETE_PER_MINUTE
    }
}

/// Answers `202 Accepted` with `{image_id, key, size, already}` once the upload is announced or
/// known to be: `already: false` when this call published the object-created event (the first
/// call, a new version of the object, or an image whose processing failed, to try again),
/// `already: true` (with the image's `status`, `pending`, `processing` or `done`) when the
/// metadata store already has this version of the original, so nothing was published. Both mean
/// the same to a client: its upload is taken care of, and calling again is harmless. 409 while
/// the object is not in the store, 429 past the rate limit (with `Retry-After`).
pub(crate) async fn complete(
    State(state): State<UploadState>,
    Path(image_id): Path<String>,
    caller: Principal,
    body: Option<Json<CompleteRequest>>,
) -> Response {
    if uuid::Uuid::parse_str(&image_id).is_err() {
        return refuse(StatusCode::NOT_FOUND, "no such upload");
    }
    let Some(Json(req)) = body else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "expected JSON {key} (the key of the upload ticket)",
        );
    };
    // Keys are `<tenant>/<image_id>/<filename>`: a client may only complete an upload of its
    // own tenant, for this image.
    let owned = OriginalKey::parse(&req.key)
        .is_some_and(|k| k.image_id == image_id && k.tenant == caller.home_tenant());
    if !owned {
        return refuse(
            StatusCode::BAD_REQUEST,
            "key does not belong to this upload",
        );
    }
    let info = match state.store.head(&state.bucket, &req.key).await {
        Ok(info) => info,
        Err(e) if e.is_not_found() => {
            return refuse(
                StatusCode::CONFLICT,
                "the object is not in the store yet: PUT it first",
            );
        }
        Err(e) => {
            warn!(error = %e, "HEAD failed");
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "object store unavailable");
        }
    };
    let size = info.size;
    let etag = info.etag.map(|e| e.trim_matches('"').to_owned());
    let known = match state.db.get(&image_id).await {
        Ok(doc) => doc.filter(|doc| {
            doc.original.key == req.key
                && etag.is_some()
                && doc.original.etag.as_deref().map(|e| e.trim_matches('"')) == etag.as_deref()
                && doc.status != Status::Failed
        }),
        Err(e) => {
            warn!(error = %e, "cannot read the image's document");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "metadata database unavailable",
            );
        }
    };
    if let Some(doc) = known {
        info!(%image_id, key = %req.key, status = doc.status.as_str(), "upload already known");
        return (
            StatusCode::ACCEPTED,
            Json(json!({
                "image_id": image_id,
                "key": req.key,
                "size": size,
                "already": true,
                "status": doc.status.as_str(),
            })),
        )
            .into_response();
    }
    let record = S3EventRecord::object_created(
        "imgpipe:upload-api",
        &state.region,
        "ObjectCreated:Put",
        CreatedObject {
            bucket: state.bucket.clone(),
            key: req.key.clone(),
            size,
            etag,
            content_type: info.content_type,
            sequencer: sequencer_at(info.last_modified.unwrap_or_else(Utc::now)),
        },
    );
    let published = match object_created_message(record) {
        Ok(message) => state.bus.publish(message).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = published {
        warn!(error = %e, "cannot publish the object-created event");
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "bus unavailable");
    }
    info!(%image_id, key = %req.key, size, "upload completed by the client");
    (
        StatusCode::ACCEPTED,
        Json(json!({ "image_id": image_id, "key": req.key, "size": size, "already": false })),
    )
        .into_response()
}
