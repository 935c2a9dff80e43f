//! The query endpoint the page and editors browse. Rendition URLs are presigned GETs made at
//! read time, so the store's buckets stay private and any S3 works.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use imgpipe_auth::rate::{RateLimiter, limit_rate};
use imgpipe_auth::{Authenticator, Principal, authenticate};
use imgpipe_contract::db::{Cursor, DbError, ListQuery, MetadataDb, Page};
use imgpipe_contract::document::{ImageDocument, Status};
use imgpipe_contract::keys::Role;
use imgpipe_contract::store::ObjectStore;
use serde::Deserialize;
use serde_json::json;
use tracing::warn;

/// How long a rendition URL in a response stays valid.
const URL_TTL: Duration = Duration::from_secs(3600);
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

#[derive(Clone)]
pub struct QueryState {
    pub meta: Arc<dyn MetadataDb>,
    pub store: Arc<dyn ObjectStore>,
}

/// The query routes, for editors and admins, behind the key check of `auth`.
/// Layers run outside in: the key check, the caller's rate limit, the role check.
pub fn router(state: QueryState, auth: Authenticator, limiter: Arc<RateLimiter>) -> axum::Router {
    axum::Router::new()
        .route("/api/images", get(list))
        .route("/api/images/{id}", get(one))
        .route("/api/tags", get(tags))
        .with_state(state)
        .route_layer(axum::middleware::from_fn_with_state(limiter, limit_rate))
        .route_layer(axum::middleware::from_fn_with_state(auth, authenticate))
}

/// An uploader sees the images it uploaded; editors and admins every image of their tenants.
fn only_own_uploads(caller: &Principal) -> Option<String> {
    (caller.role < Role::Editor).then(|| caller.key_id.clone())
}

#[derive(Debug, Deserialize)]
struct ListParams {
    limit: Option<u32>,
    cursor: Option<String>,
    tag: Option<String>,
    status: Option<String>,
    q: Option<String>,
}

struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::InvalidQuery(m) => ApiError(StatusCode::BAD_REQUEST, m),
            other => {
                warn!(error = %other, "metadata query failed");
                ApiError(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "metadata store unavailable".to_owned(),
                )
            }
        }
    }
}

async fn list(
    State(state): State<QueryState>,
    caller: Principal,
    Query(params): Query<ListParams>,
) -> Result<Json<Page>, ApiError> {
    let status = match params.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!("unknown status {s:?}: use pending, processing, done or failed"),
            )
        })?),
    };
    let query = ListQuery {
        tenants: caller.tenants.clone(),
        uploaded_by: only_own_uploads(&caller),
        limit: params.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
        cursor: params
            .cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(Cursor::decode)
            .transpose()?,
        tag: params.tag.filter(|t| !t.is_empty()),
        status,
        q: params.q.filter(|q| !q.trim().is_empty()),
    };
    let mut page = state.meta.list(&query).await?;
    for doc in &mut page.items {
        sign_urls(state.store.as_ref(), doc).await;
    }
    Ok(Json(page))
}

async fn one(
    State(state): State<QueryState>,
    caller: Principal,
    Path(id): Path<String>,
) -> Result<Json<ImageDocument>, ApiError> {
    // Another tenant's image is as good as absent: 404, not 403, so ids reveal nothing.
    let mut doc = state
        .meta
        .get(&id)
        .await?
        .filter(|doc| caller.sees(&doc.tenant))
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no image {id}")))?;
    if let Some(key_id) = only_own_uploads(&caller)
        && state.meta.uploader(&id).await?.as_deref() != Some(key_id.as_str())
    {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("no image {id}")));
    }
    sign_urls(state.store.as_ref(), &mut doc).await;
    Ok(Json(doc))
}

/// Tag counts describe every image of the tenant: an editor's view.
async fn tags(State(state): State<QueryState>, caller: Principal) -> Result<Response, ApiError> {
    if let Err(denied) = caller.require(Role::Editor) {
        return Ok(denied.into_response());
    }
    Ok(Json(state.meta.tag_counts(&caller.tenants).await?).into_response())
}

async fn sign_urls(store: &dyn ObjectStore, doc: &mut ImageDocument) {
    let Some(renditions) = doc.renditions.as_mut() else {
        return;
    };
    for r in [&mut renditions.thumb, &mut renditions.preview] {
        match store.presign_get(&r.bucket, &r.key, URL_TTL).await {
            Ok(req) => r.url = Some(req.url),
            Err(e) => warn!(error = %e, key = %r.key, "cannot sign rendition URL"),
        }
    }
}
