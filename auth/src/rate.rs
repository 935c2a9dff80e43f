//! Rate limiting: a token bucket per caller, the caller being its API key (so clients behind one
//! proxy or gateway do not share a budget) or, on routes without a key, its address. Every ticket
//! may become an upload the pipeline must process and every search is a query: one caller must
//! not be able to flood either.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::Principal;

/// Buckets kept before idle (full) ones are forgotten.
const PRUNE_AT: usize = 10_000;

pub struct RateLimiter {
    /// Tokens per second.
    rate: f64,
    /// Bucket size.
    burst: f64,
    buckets: Mutex<HashMap<Caller, Bucket>>,
    /// Proxies whose `X-Forwarded-For` names the client.
    trusted: Vec<IpAddr>,
}

/// Whose budget a request spends.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Caller {
    Key(String),
    Address(IpAddr),
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// `per_minute` requests a minute per client, bursting to as many; 0 means no limit.
    pub fn per_minute(per_minute: u32) -> Self {
        RateLimiter {
            rate: f64::from(per_minute) / 60.0,
            burst: f64::from(per_minute),
            buckets: Mutex::new(HashMap::new()),
            trusted: Vec::new(),
        }
    }

    /// Reads the client's address from `X-Forwarded-For` when the peer is one of `proxies`.
    pub fn trusting(mut self, proxies: &[IpAddr]) -> Self {
        self.trusted = proxies.to_vec();
        self
    }

    /// Takes one token for `client`, or says how long until one is available.
    pub fn check(&self, client: Caller) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        // A poisoned lock only means another request panicked mid-update; the map is still usable.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= PRUNE_AT {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| {
                b.tokens + rate * now.duration_since(b.updated).as_secs_f64() < burst
            });
        }
        let bucket = buckets.entry(client).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let refilled = self.rate * now.duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + refilled).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }
}

/// Axum middleware: spends one token of the caller (its key, as the authentication layer before
/// it found, else its address) or answers 429 with `Retry-After`.
pub async fn limit_rate(
    State(limiter): State<Arc<RateLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    let caller = match request.extensions().get::<Principal>() {
        Some(principal) if !principal.key_id.is_empty() => Caller::Key(principal.key_id.clone()),
        _ => Caller::Address(client_address(&request, &limiter.trusted)),
    };
    match limiter.check(caller) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let body = json!({ "error": "too many requests; retry later" });
            let mut refused = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
            let secs = wait.as_secs().max(1).to_string();
            if let Ok(value) = HeaderValue::from_str(&secs) {
                refused.headers_mut().insert(header::RETRY_AFTER, value);
            }
            refused
        }
    }
}

/// The client's address: the peer's, or, when the peer is a trusted proxy, the nearest address
/// in `X-Forwarded-For` that is not a trusted proxy itself (entries further left are the
/// client's own claims and could be forged).
pub fn client_address(request: &Request, trusted: &[IpAddr]) -> IpAddr {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded
        .into_iter()
        .rev()
        .find(|hop| !trusted.contains(hop))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_refuses_with_a_wait_per_client() {
        let limiter = RateLimiter::per_minute(3);
        let (a, b) = (Caller::Key("k1".into()), Caller::Key("k2".into()));
        for _ in 0..3 {
            assert!(limiter.check(a.clone()).is_ok());
        }
        let wait = limiter
            .check(a.clone())
            .expect_err("fourth request refused");
        assert!(
            wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(
            limiter.check(b.clone()).is_ok(),
            "another client has its own bucket"
        );
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.5".parse().expect("ip");
        let request = |peer: &str, forwarded: &str| {
            let mut request = Request::new(axum::body::Body::empty());
            let peer: SocketAddr = format!("{peer}:40000").parse().expect("addr");
            request.extensions_mut().insert(ConnectInfo(peer));
            request
                .headers_mut()
                .insert("x-forwarded-for", forwarded.parse().expect("header"));
            request
        };
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        // Behind the proxy: the hop the proxy saw, not what the client wrote before it.
        let via = request("10.0.0.5", "6.6.6.6, 203.0.113.7");
        assert_eq!(client_address(&via, &[proxy]), ip("203.0.113.7"));
        // Straight from a client: its own header is ignored.
        let direct = request("198.51.100.2", "203.0.113.7");
        assert_eq!(client_address(&direct, &[proxy]), ip("198.51.100.2"));
        assert_eq!(client_address(&via, &[]), ip("10.0.0.5"));
    }

    #[test]
    fn zero_means_unlimited() {
        let limiter = RateLimiter::per_minute(0);
        let ip = Caller::Address("192.0.2.1".parse().expect("ip"));
        assert!((0..10_000).all(|_| limiter.check(ip.clone()).is_ok()));
    }
}
