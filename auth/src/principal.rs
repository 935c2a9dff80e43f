//! The caller of a request, as its key describes it.

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use imgpipe_contract::keys::{KeyRecord, Role};
use serde_json::json;

/// Who is calling: a key's id, name, role and tenants.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub key_id: String,
    pub name: String,
    pub role: Role,
    /// Never empty; the first is where this caller's uploads go.
    pub tenants: Vec<String>,
}

impl Principal {
    pub fn from_key(key: &KeyRecord) -> Self {
        Principal {
            key_id: key.id.clone(),
            name: key.name.clone(),
            role: key.role,
            tenants: key.tenants.clone(),
        }
    }

    /// The tenant this caller's uploads belong to.
    pub fn home_tenant(&self) -> &str {
        self.tenants.first().map_or("", String::as_str)
    }

    /// Whether this caller may see the images of `tenant`.
    pub fn sees(&self, tenant: &str) -> bool {
        self.tenants.iter().any(|t| t == tenant)
    }

    /// Ok when the caller's role is at least `role`, else 403.
    pub fn require(&self, role: Role) -> Result<(), Denied> {
        if self.role >= role {
            Ok(())
        } else {
            Err(Denied::Forbidden(role))
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Denied {
    /// No key: 401.
    Unauthenticated,
    /// A key that is unknown, malformed or revoked: 401, saying so (a person who pasted a key
    /// wants to know it is the key that is wrong).
    InvalidKey,
    /// A valid key whose role is below the one needed: 403.
    Forbidden(Role),
    /// The key database did not answer: 503.
    Unavailable,
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        let (status, error) = match self {
            Denied::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "an API key is required (Authorization: Bearer KEY)".to_owned(),
            ),
            Denied::InvalidKey => (
                StatusCode::UNAUTHORIZED,
                "this API key is not valid: unknown, revoked or mistyped".to_owned(),
            ),
            Denied::Forbidden(role) => {
                (StatusCode::FORBIDDEN, format!("this needs the {role} role"))
            }
            Denied::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot check the API key now; try again".to_owned(),
            ),
        };
        let mut response = (status, Json(json!({ "error": error }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// Handlers take the caller as an argument; the [`crate::authenticate`] layer put it there.
impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Denied;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or(Denied::Unauthenticated)
    }
}
