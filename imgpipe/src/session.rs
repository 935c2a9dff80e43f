//! The page's sign-in: `POST /api/session {"key"}` checks the key and sets it as an `HttpOnly`,
//! `SameSite=Strict` cookie, so the page's script never holds it and no other site can send it;
//! `DELETE /api/session` clears it.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use imgpipe_auth::{Authenticator, SESSION_COOKIE};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct SignIn {
    key: String,
}

pub fn router(auth: Authenticator) -> axum::Router {
    axum::Router::new()
        .route("/api/session", post(sign_in).delete(sign_out))
        .with_state(auth)
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
