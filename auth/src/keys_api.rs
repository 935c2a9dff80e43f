//! `POST /api/keys`, `GET /api/keys`, `DELETE /api/keys/{id}`: admins manage keys over HTTP, as
//! `imgpipe keys` does on the command line. An admin makes keys only for its own tenants.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use imgpipe_contract::keys::{KeyError, KeyRecord, KeyStore, Role, valid_tenant};
use serde::Deserialize;
use serde_json::json;

use crate::principal::Principal;
use crate::rate::{RateLimiter, limit_rate};
use crate::{Authenticator, authenticate, token};

#[derive(Clone)]
struct KeysState {
    keys: Arc<dyn KeyStore>,
    auth: Authenticator,
}

/// The key routes, behind the key check and the caller's rate limit.
pub fn router(keys: Arc<dyn KeyStore>, auth: Authenticator, limiter: Arc<RateLimiter>) -> Router {
    let state = KeysState {
        keys,
        auth: auth.clone(),
    };
    Router::new()
        .route("/api/keys", get(list).post(create))
        .route("/api/keys/{id}", delete(revoke))
        .with_state(state)
        .route_layer(axum::middleware::from_fn_with_state(limiter, limit_rate))
        .route_layer(axum::middleware::from_fn_with_state(auth, authenticate))
}

/// What `POST /api/keys` takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    pub role: Role,
    /// Defaults to the caller's first tenant.
    pub tenant: Option<String>,
    #[serde(default)]
    pub name: String,
}

/// Makes and stores a key; the returned `key` is the only time it is shown.
pub async fn make_key(
    keys: &dyn KeyStore,
    role: Role,
    tenants: Vec<String>,
    name: &str,
) -> Result<(KeyRecord, String), MakeKeyError> {
    let id = uuid::Uuid::now_v7().to_string();
    make_key_with_id(keys, id, role, tenants, name).await
}

/// [`make_key`] with a chosen id: a second key with the same id is refused
/// ([`KeyError::Duplicate`]), which makes "create this key once" safe among racing processes.
pub async fn make_key_with_id(
    keys: &dyn KeyStore,
    id: String,
    role: Role,
    tenants: Vec<String>,
    name: &str,
) -> Result<(KeyRecord, String), MakeKeyError> {
    if tenants.is_empty() || !tenants.iter().all(|t| valid_tenant(t)) {
        return Err(MakeKeyError::Invalid(format!(
            "tenant names are 1 to 40 of a-z, 0-9 and -, not starting with -: {tenants:?}"
        )));
    }
    if role != Role::Admin && tenants.len() != 1 {
        return Err(MakeKeyError::Invalid(format!(
            "a {role} key acts for exactly one tenant"
        )));
    }
    if name.chars().count() > 100 {
        return Err(MakeKeyError::Invalid("name is over 100 characters".into()));
    }
    let made = token::generate().map_err(|e| MakeKeyError::Random(e.to_string()))?;
    let record = KeyRecord {
        id,
        prefix: made.prefix,
        hash: made.hash,
        name: name.to_owned(),
        role,
        tenants,
        created_at: chrono::Utc::now(),
        revoked_at: None,
    };
    keys.create_key(&record)
        .await
        .map_err(MakeKeyError::Store)?;
    Ok((record, made.key))
}

#[derive(Debug, thiserror::Error)]
pub enum MakeKeyError {
    #[error("{0}")]
    Invalid(String),
    #[error("no random numbers from the operating system: {0}")]
    Random(String),
    #[error(transparent)]
    Store(KeyError),
}

async fn create(
    State(state): State<KeysState>,
    caller: Principal,
    Json(request): Json<NewKeyRequest>,
) -> Response {
    if let Err(denied) = caller.require(Role::Admin) {
        return denied.into_response();
    }
    let tenant = request
        .tenant
        .unwrap_or_else(|| caller.home_tenant().to_owned());
    if !caller.sees(&tenant) {
        return error(
            StatusCode::FORBIDDEN,
            format!("you are not an admin of tenant {tenant:?}"),
        );
    }
    match make_key(
        state.keys.as_ref(),
        request.role,
        vec![tenant],
        &request.name,
    )
    .await
    {
        Ok((record, key)) => (
            StatusCode::CREATED,
            Json(json!({ "key": key, "details": record })),
        )
            .into_response(),
        Err(MakeKeyError::Invalid(reason)) => error(StatusCode::BAD_REQUEST, reason),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn list(State(state): State<KeysState>, caller: Principal) -> Response {
    if let Err(denied) = caller.require(Role::Admin) {
        return denied.into_response();
    }
    match state.keys.list_keys().await {
        Ok(keys) => {
            let visible: Vec<KeyRecord> = keys
                .into_iter()
                .filter(|k| k.tenants.iter().any(|t| caller.sees(t)))
                .collect();
            Json(json!({ "items": visible })).into_response()
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn revoke(
    State(state): State<KeysState>,
    caller: Principal,
    Path(id): Path<String>,
) -> Response {
    if let Err(denied) = caller.require(Role::Admin) {
        return denied.into_response();
    }
    // Another tenant's key is as good as absent to this admin.
    let not_found = || error(StatusCode::NOT_FOUND, format!("no key {id}"));
    let keys = match state.keys.list_keys().await {
        Ok(keys) => keys,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let Some(target) = keys.iter().find(|k| k.id == id) else {
        return not_found();
    };
    if !target.tenants.iter().all(|t| caller.sees(t)) {
        return not_found();
    }
    match state.keys.revoke_key(&id, chrono::Utc::now()).await {
        Ok(record) => {
            state.auth.forget();
            Json(json!({ "details": record })).into_response()
        }
        Err(KeyError::NotFound(_)) => not_found(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}
