//! How long an upload body may take. A presigned URL grants a write until it expires, so its
//! body must be complete by then, not merely begun: otherwise a client could trickle a body for
//! as long as it likes. Header-signed uploads (our own services) get a configured maximum, and
//! a presigned one never more than that. Either way a body that stops arriving for longer than
//! the idle timeout fails early, so a stalled client does not hold its connection until the
//! deadline.

use std::future::Future;
use std::pin::Pin;
use std::task::Context;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use http::Uri;
use tokio::time::{Instant, Sleep};

/// The time limits of every upload body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyTimeouts {
    /// The most any body may take.
    pub max: Duration,
    /// The longest pause between two pieces of a body.
    pub idle: Duration,
}

/// The limit a body went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeLimit {
    /// Not complete by its deadline.
    Deadline,
    /// Nothing arrived for this long.
    Idle(Duration),
}

/// Time left at `now` for the body of a request to `uri`: until its presigned URL expires,
/// and never more than `max`.
pub(crate) fn time_allowed(uri: &Uri, now: DateTime<Utc>, max: Duration) -> Duration {
    match uri.query().and_then(presigned_expiry) {
        Some(expiry) => (expiry - now).to_std().unwrap_or(Duration::ZERO).min(max),
        None => max,
    }
}

/// When a presigned URL stops being valid: SigV4's `X-Amz-Date` + `X-Amz-Expires`, or SigV2's
/// `Expires`. None for a request signed in its headers. A URL whose fields do not parse was
/// refused by the signature check already.
fn presigned_expiry(query: &str) -> Option<DateTime<Utc>> {
    let field = |name: &str| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find_map(|(n, value)| (n == name).then_some(value))
    };
    if field("X-Amz-Signature").is_some() {
        let date = NaiveDateTime::parse_from_str(field("X-Amz-Date")?, "%Y%m%dT%H%M%SZ").ok()?;
        let expires = TimeDelta::try_seconds(field("X-Amz-Expires")?.parse().ok()?)?;
        return date.and_utc().checked_add_signed(expires);
    }
    if field("Signature").is_some() {
        return DateTime::from_timestamp(field("Expires")?.parse().ok()?, 0);
    }
    None
}

/// The two timers of one body.
pub(crate) struct BodyClock {
    deadline: Pin<Box<Sleep>>,
    idle: Duration,
    idle_timer: Pin<Box<Sleep>>,
}

impl BodyClock {
    /// Starts both timers now. Needs a tokio runtime with its timer, as the server has.
    pub(crate) fn start(allowed: Duration, idle: Duration) -> Self {
        let now = Instant::now();
        BodyClock {
            deadline: Box::pin(tokio::time::sleep_until(now + allowed)),
            idle,
            idle_timer: Box::pin(tokio::time::sleep_until(now + idle)),
        }
    }

    /// A piece of the body arrived: the idle timer starts over.
    pub(crate) fn progressed(&mut self) {
        self.idle_timer.as_mut().reset(Instant::now() + self.idle);
    }

    /// The deadline, if it has passed; otherwise wakes the body's reader when it does.
    pub(crate) fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Option<TimeLimit> {
        self.deadline
            .as_mut()
            .poll(cx)
            .is_ready()
            .then_some(TimeLimit::Deadline)
    }

    /// The idle limit, if the body has paused past it; otherwise wakes the reader when it does.
    pub(crate) fn poll_idle(&mut self, cx: &mut Context<'_>) -> Option<TimeLimit> {
        self.idle_timer
            .as_mut()
            .poll(cx)
            .is_ready()
            .then_some(TimeLimit::Idle(self.idle))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(900);

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("timestamp")
            .with_timezone(&Utc)
    }

    fn uri(query: &str) -> Uri {
        format!("/originals/t/img/a.jpg?{query}")
            .parse()
            .expect("uri")
    }

    #[test]
    fn a_presigned_body_must_end_by_the_urls_expiry() {
        let url = uri(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20240301T120000Z&X-Amz-Expires=300\
             &X-Amz-SignedHeaders=host&X-Amz-Signature=abc",
        );
        let allowed = time_allowed(&url, at("2024-03-01T12:01:00Z"), MAX);
        assert_eq!(allowed, Duration::from_secs(240));
        let past = time_allowed(&url, at("2024-03-01T12:06:00Z"), MAX);
        assert_eq!(past, Duration::ZERO);
    }

    #[test]
    fn a_long_lived_url_is_capped_at_the_maximum() {
        let week = uri("X-Amz-Date=20240301T120000Z&X-Amz-Expires=604800&X-Amz-Signature=abc");
        assert_eq!(time_allowed(&week, at("2024-03-01T12:00:00Z"), MAX), MAX);
    }

    #[test]
    fn a_sigv2_url_ends_at_its_expires() {
        let url = uri("AWSAccessKeyId=k&Expires=1709294460&Signature=abc");
        let allowed = time_allowed(&url, at("2024-03-01T12:00:00Z"), MAX);
        assert_eq!(allowed, Duration::from_secs(60));
    }

    #[test]
    fn a_header_signed_request_gets_the_maximum() {
        let plain: Uri = "/originals/t/img/a.jpg".parse().expect("uri");
        assert_eq!(time_allowed(&plain, Utc::now(), MAX), MAX);
        // An expiry without a signature is no presigned URL.
        let unsigned = uri("X-Amz-Date=20240301T120000Z&X-Amz-Expires=1");
        assert_eq!(time_allowed(&unsigned, Utc::now(), MAX), MAX);
    }
}
