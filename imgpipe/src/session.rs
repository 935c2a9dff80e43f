//! The page's sign-in: `POST /api/session {"key"}` checks the key and sets it as an `HttpOnly`,
//! `SameSite=Strict` cookie, so the page's script never holds it and no other site can send it;
//! `DELETE /api/session` clears it.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, middleware};
use imgpipe_auth::rate::{RateLimiter, limit_rate};
use imgpipe_auth::{Authenticator, SESSION_COOKIE};
use imgpipe_contract::config::AccessConfig;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct SignIn {
    key: String,
}

/// The sign-in routes, limited per client address (they take no key yet).
pub fn router(auth: Authenticator, access: &AccessConfig) -> axum::Router {
    let limiter = RateLimiter::per_minute(access.rate_per_minute).trusting(&access.trusted_proxies);
    axum::Router::new()
        .route("/api/session", post(sign_in).delete(sign_out))
        .with_state(auth)
        .route_layer(middleware::from_fn_with_state(
            Arc::new(limiter),
            limit_rate,
        ))
}

async fn sign_in(State(auth): State<Authenticator>, Json(body): Json<SignIn>) -> Response {
    match auth.check(Some(body.key.trim())).await {
        Ok(principal) => {
            let cookie = format!(
                "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age=2592000",
                body.key.trim()
            );
            let who = json!({ "role": principal.role, "tenants": principal.tenants });
            ([(header::SET_COOKIE, cookie)], Json(who)).into_response()
        }
        Err(denied) => denied.into_response(),
    }
}

async fn sign_out() -> Response {
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response()
}
