//! Checking a presented key, with a short cache in front of the key database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use imgpipe_contract::keys::{KeyRecord, KeyStore, Role};
use tracing::warn;

use crate::principal::{Denied, Principal};
use crate::token;

/// How long a looked-up key is trusted before the database is asked again: the longest a
/// revocation takes to reach a process that has just seen the key.
pub const CACHE_TTL: Duration = Duration::from_secs(5);

/// The cookie the page's sign-in sets (`HttpOnly`, `SameSite=Strict`), holding the key.
pub const SESSION_COOKIE: &str = "imgpipe_key";

/// Cached lookups, by prefix; bounded so a flood of made-up prefixes cannot grow it.
const CACHE_ENTRIES: usize = 4096;

type Cache = HashMap<String, (Option<KeyRecord>, Instant)>;

/// Checks keys against a [`KeyStore`], or lets everyone in when access control is off.
#[derive(Clone)]
pub struct Authenticator {
    keys: Option<Arc<dyn KeyStore>>,
    cache: Arc<Mutex<Cache>>,
}

impl Authenticator {
    pub fn new(keys: Arc<dyn KeyStore>) -> Self {
        Authenticator {
            keys: Some(keys),
            cache: Arc::default(),
        }
    }

    /// Access control off (`--insecure`, or the benchmark's baseline): every request acts as an
    /// admin of the tenant `default`.
    pub fn disabled() -> Self {
        Authenticator {
            keys: None,
            cache: Arc::default(),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.keys.is_some()
    }

    /// The principal a presented key stands for.
    pub async fn check(&self, presented: Option<&str>) -> Result<Principal, Denied> {
        let Some(keys) = &self.keys else {
            return Ok(anonymous_admin());
        };
        let presented = presented
            .filter(|p| !p.is_empty())
            .ok_or(Denied::Unauthenticated)?;
        let prefix = token::prefix_of(presented).ok_or(Denied::InvalidKey)?;
        let record = match self.cached(prefix) {
            Some(record) => record,
            None => {
                let found = keys.key_by_prefix(prefix).await.map_err(|e| {
                    warn!(error = %e, "key lookup failed");
                    Denied::Unavailable
                })?;
                self.remember(prefix, found.clone());
                found
            }
        };
        match record {
            Some(key) if key.is_active() && token::matches(presented, &key.hash) => {
                Ok(Principal::from_key(&key))
            }
            _ => Err(Denied::InvalidKey),
        }
    }

    /// Forgets cached lookups (this process just changed a key).
    pub fn forget(&self) {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn cached(&self, prefix: &str) -> Option<Option<KeyRecord>> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let (record, at) = cache.get(prefix)?;
        (at.elapsed() < CACHE_TTL).then(|| record.clone())
    }

    fn remember(&self, prefix: &str, record: Option<KeyRecord>) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHE_ENTRIES {
            cache.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(prefix.to_owned(), (record, Instant::now()));
    }
}

fn anonymous_admin() -> Principal {
    Principal {
        key_id: String::new(),
        name: "access control off".to_owned(),
        role: Role::Admin,
        tenants: vec!["default".to_owned()],
    }
}

/// The key a request presents: `Authorization: Bearer KEY`, else the page's session cookie.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        return value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim);
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

/// Axum middleware: refuses a request without a valid key (401), else puts its [`Principal`]
/// on the request for the handler. Layer it over every route that needs a key.
pub async fn authenticate(
    State(auth): State<Authenticator>,
    mut request: Request,
    next: Next,
) -> Response {
    match auth.check(presented_key(request.headers())).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(denied) => denied.into_response(),
    }
}
