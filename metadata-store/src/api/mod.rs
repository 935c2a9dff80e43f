//! The query endpoint the page and editors browse, and the editors' corrections. Renditions are
//! served at stable paths (`/api/images/{id}/thumb?v=…`) that browsers cache for good, so a list
//! costs no signing and a second visit downloads no thumbnail again.

mod edit;
mod error;
mod events;
mod list;
mod renditions;

use std::sync::Arc;

use axum::routing::{get, post};
use imgpipe_auth::rate::{RateLimiter, limit_rate};
use imgpipe_auth::{Authenticator, Principal, authenticate};
use imgpipe_contract::bus::Bus;
use imgpipe_contract::db::MetadataDb;
use imgpipe_contract::document::{ImageDocument, Links};
use imgpipe_contract::keys::Role;
use imgpipe_contract::store::ObjectStore;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use error::ApiError;
pub use events::FeedSignal;

#[derive(Clone)]
pub struct QueryState {
    pub meta: Arc<dyn MetadataDb>,
    pub store: Arc<dyn ObjectStore>,
    /// Publishes the events that re-run an image (`POST /api/images/{id}/reprocess`).
    pub bus: Arc<dyn Bus>,
    /// Region named in those events.
    pub region: String,
    /// Wakes the event streams of this process when a document changed here.
    pub feed: FeedSignal,
    /// Ends the event streams when the process stops.
    pub stopping: CancellationToken,
}

/// The query and editing routes behind the key check of `auth`. Layers run outside in: the key
/// check, the caller's rate limit, the role check (in each handler).
pub fn router(state: QueryState, auth: Authenticator, limiter: Arc<RateLimiter>) -> axum::Router {
    axum::Router::new()
        .route("/api/images", get(list::list))
        .route(
            "/api/images/{id}",
            get(list::one).patch(edit::patch).delete(edit::delete),
        )
        .route("/api/images/{id}/reprocess", post(edit::reprocess))
        .route("/api/images/{id}/thumb", get(renditions::thumb))
        .route("/api/images/{id}/preview", get(renditions::preview))
        .route("/api/images/{id}/original", get(renditions::original))
        .route("/api/facets", get(list::facets))
        .route("/api/tags", get(list::tags))
        .route("/api/events", get(events::events))
        .with_state(state)
        .route_layer(axum::middleware::from_fn_with_state(limiter, limit_rate))
        .route_layer(axum::middleware::from_fn_with_state(auth, authenticate))
}

/// A channel the metadata writer bumps after each write, so streams need not wait for their
/// next poll.
pub fn feed_signal() -> FeedSignal {
    FeedSignal(Arc::new(watch::channel(0u64).0))
}

/// An uploader sees the images it uploaded; editors and admins every image of their tenants.
fn only_own_uploads(caller: &Principal) -> Option<String> {
    (caller.role < Role::Editor).then(|| caller.key_id.clone())
}

/// The document `id` if the caller may see it; another tenant's image (or, for an uploader,
/// another key's upload) is as good as absent: 404, not 403, so ids reveal nothing.
async fn visible(
    state: &QueryState,
    caller: &Principal,
    id: &str,
) -> Result<ImageDocument, ApiError> {
    let doc = state
        .meta
        .get(id)
        .await?
        .filter(|doc| caller.sees(&doc.tenant))
        .ok_or_else(|| ApiError::not_found(id))?;
    if let Some(key_id) = only_own_uploads(caller)
        && state.meta.uploader(id).await?.as_deref() != Some(key_id.as_str())
    {
        return Err(ApiError::not_found(id));
    }
    Ok(doc)
}

/// The version a rendition URL carries: the original's eTag they were made from, so a new
/// original gets new URLs and a cached rendition is never stale.
fn version(doc: &ImageDocument) -> String {
    let etag = doc
        .renditions
        .as_ref()
        .and_then(|r| r.source_etag.as_deref())
        .or(doc.original.etag.as_deref())
        .unwrap_or("0");
    etag.trim_matches('"').chars().take(16).collect()
}

/// Fills in the serve-time paths: renditions and the original's download.
pub fn with_links(mut doc: ImageDocument) -> ImageDocument {
    let v = version(&doc);
    let id = doc.id.clone();
    if let Some(renditions) = doc.renditions.as_mut() {
        renditions.thumb.url = Some(format!("/api/images/{id}/thumb?v={v}"));
        renditions.preview.url = Some(format!("/api/images/{id}/preview?v={v}"));
    }
    doc.links = Some(Links {
        original: format!("/api/images/{id}/original"),
    });
    doc
}
