//! Lists, one image, facets and tag counts.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use imgpipe_auth::Principal;
use imgpipe_contract::db::{Cursor, Facets, ListQuery};
use imgpipe_contract::document::{ImageDocument, Status};
use imgpipe_contract::keys::Role;
use serde::Deserialize;

use super::{ApiError, QueryState, only_own_uploads, visible, with_links};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

#[derive(Debug, Deserialize)]
pub(super) struct ListParams {
    limit: Option<String>,
    cursor: Option<String>,
    tag: Option<String>,
    status: Option<String>,
    q: Option<String>,
    camera: Option<String>,
    month: Option<String>,
}

/// Empty parameters (`?tag=`, as a form sends them) mean no filter.
fn given(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// The query a request's parameters ask for, scoped to what the caller may see.
fn query_of(caller: &Principal, params: ListParams) -> Result<ListQuery, ApiError> {
    let status = match given(params.status) {
        None => None,
        Some(s) => Some(Status::parse(&s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown status {s:?}: use pending, processing, done or failed"
            ))
        })?),
    };
    let limit = match given(params.limit) {
        None => DEFAULT_LIMIT,
        Some(l) => match l.trim().parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "limit must be a whole number from 1 to {MAX_LIMIT}, not {l:?}"
                )));
            }
        },
    };
    let month = given(params.month);
    if let Some(m) = &month {
        let b = m.as_bytes();
        let valid = b.len() == 7
            && b[4] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || c.is_ascii_digit());
        if !valid {
            return Err(ApiError::bad_request(format!(
                "month must read YYYY-MM, not {m:?}"
            )));
        }
    }
    Ok(ListQuery {
        tenants: caller.tenants.clone(),
        uploaded_by: only_own_uploads(caller),
        limit,
        cursor: given(params.cursor)
            .map(|c| Cursor::decode(&c))
            .transpose()?,
        tag: given(params.tag).map(|t| t.trim().to_owned()),
        status,
        q: given(params.q),
        camera: given(params.camera),
        month,
    })
}

/// A malformed query string gets the API's error shape, not the framework's plain text.
fn params(params: Result<Query<ListParams>, QueryRejection>) -> Result<ListParams, ApiError> {
    params
        .map(|Query(p)| p)
        .map_err(|e| ApiError::bad_request(format!("unreadable query string: {}", e.body_text())))
}

/// The page as stored, spliced into the response without reading it (see
/// [`imgpipe_contract::db::JsonPage`]); a document stored before serving paths were kept in it
/// is completed on the way.
pub(super) async fn list(
    State(state): State<QueryState>,
    caller: Principal,
    query: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let query = query_of(&caller, params(query)?)?;
    let page = state.meta.list_json(&query).await?;
    let size: usize = page.items.iter().map(|d| d.len() + 1).sum();
    let mut body = String::with_capacity(size + 64);
    body.push_str("{\"items\":[");
    for (n, doc) in page.items.iter().enumerate() {
        if n > 0 {
            body.push(',');
        }
        if LINKS_KEYS.iter().any(|k| doc.contains(k)) {
            body.push_str(doc);
        } else {
            let full: ImageDocument = serde_json::from_str(doc)
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            let full = serde_json::to_string(&with_links(full))
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            body.push_str(&full);
        }
    }
    body.push_str("],\"next_cursor\":");
    body.push_str(&serde_json::to_string(&page.next_cursor).unwrap_or_else(|_| "null".into()));
    body.push('}');
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// How a stored document that carries its serving paths starts them: as serde_json prints it
/// (SQLite), and as PostgreSQL prints JSONB.
const LINKS_KEYS: [&str; 2] = ["\"links\":{\"original\":", "\"links\": {\"original\": "];

pub(super) async fn one(
    State(state): State<QueryState>,
    caller: Principal,
    Path(id): Path<String>,
) -> Result<Json<ImageDocument>, ApiError> {
    Ok(Json(with_links(visible(&state, &caller, &id).await?)))
}

/// Counts per status, category, tag, camera and month of the images the filters select, each
/// facet counted without its own filter.
pub(super) async fn facets(
    State(state): State<QueryState>,
    caller: Principal,
    query: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Facets>, ApiError> {
    let query = query_of(&caller, params(query)?)?;
    Ok(Json(state.meta.facets(&query).await?))
}

/// Tag counts describe every image of the tenant: an editor's view.
pub(super) async fn tags(
    State(state): State<QueryState>,
    caller: Principal,
) -> Result<Json<Vec<imgpipe_contract::db::TagCount>>, ApiError> {
    caller.require(Role::Editor)?;
    Ok(Json(state.meta.tag_counts(&caller.tenants).await?))
}
