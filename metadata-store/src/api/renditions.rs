//! Renditions at stable paths, and the original's download.
//!
//! A rendition is made deterministically from one version of the original, and its path names
//! that version (`?v=`), so the bytes behind a path never change: browsers may keep them for a
//! year without asking again (`immutable`). A request naming another version (an old page after
//! the original was replaced) gets the current bytes, but not for keeping.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use imgpipe_auth::Principal;
use imgpipe_contract::document::Rendition;
use serde::Deserialize;

use super::{ApiError, QueryState, version, visible};

/// Renditions are small (a preview is at most a few hundred KiB); anything bigger is not ours.
const MAX_RENDITION_BYTES: u64 = 32 * 1024 * 1024;
/// How long the original's download link works once the redirect is given.
const DOWNLOAD_TTL: Duration = Duration::from_secs(300);
const KEEP: &str = "private, max-age=31536000, immutable";
const REVALIDATE: &str = "private, no-cache";

#[derive(Debug, Deserialize)]
pub(super) struct Version {
    v: Option<String>,
}

#[derive(Clone, Copy)]
enum Which {
    Thumb,
    Preview,
}

pub(super) async fn thumb(
    state: State<QueryState>,
    caller: Principal,
    id: Path<String>,
    v: Query<Version>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    serve(state, caller, id, v, headers, Which::Thumb).await
}

pub(super) async fn preview(
    state: State<QueryState>,
    caller: Principal,
    id: Path<String>,
    v: Query<Version>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    serve(state, caller, id, v, headers, Which::Preview).await
}

async fn serve(
    State(state): State<QueryState>,
    caller: Principal,
    Path(id): Path<String>,
    Query(asked): Query<Version>,
    headers: HeaderMap,
    which: Which,
) -> Result<Response, ApiError> {
    let doc = visible(&state, &caller, &id).await?;
    let current = version(&doc);
    let Some(renditions) = doc.renditions else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("image {id} has no renditions yet"),
        ));
    };
    let (rendition, name): (&Rendition, &str) = match which {
        Which::Thumb => (&renditions.thumb, "thumb"),
        Which::Preview => (&renditions.preview, "preview"),
    };
    let etag = format!("\"{current}-{name}\"");
    let cache = if asked.v.as_deref() == Some(current.as_str()) {
        KEEP
    } else {
        REVALIDATE
    };
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let bytes = state
            .store
            .get(&rendition.bucket, &rendition.key, MAX_RENDITION_BYTES)
            .await?;
        let mut response = bytes.into_response();
        if let Ok(value) = HeaderValue::from_str(&rendition.content_type) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        response
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    Ok(response)
}

/// A redirect to a short-lived URL of the original in the object store: the bytes go straight
/// from storage to the browser, as uploads do.
pub(super) async fn original(
    State(state): State<QueryState>,
    caller: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let doc = visible(&state, &caller, &id).await?;
    let url = state
        .store
        .presign_get(&doc.original.bucket, &doc.original.key, DOWNLOAD_TTL)
        .await?;
    let mut response = Redirect::to(&url.url).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
