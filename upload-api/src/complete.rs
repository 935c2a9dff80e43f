//! `POST /api/uploads/{id}/complete`: for object stores that cannot notify (AWS S3 without a
//! bridge, Garage), the client reports its finished upload; we HEAD the object and publish the
//! same `ObjectCreated` event a notifying store would. Publishing twice (a store that does
//! notify, or a client that retries) is harmless: every stage is idempotent per key.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use imgpipe_auth::Principal;
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
    let record = S3EventRecord::object_created(
        "imgpipe:upload-api",
        &state.region,
        "ObjectCreated:Put",
        CreatedObject {
            bucket: state.bucket.clone(),
            key: req.key.clone(),
            size,
            etag: info.etag.map(|e| e.trim_matches('"').to_owned()),
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
        Json(json!({ "image_id": image_id, "key": req.key, "size": size })),
    )
        .into_response()
}
