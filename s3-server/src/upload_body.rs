//! Watches an upload body while the backend streams it to disk. The backend reports any body
//! failure as InternalError; the watch tells the client what really happened: the body passed
//! the size limit (aws-chunked and multipart bodies reveal their size only as they arrive), it
//! broke off (client gone, bad chunk signature), it was too slow, or it did not match its
//! declared digest. The last three end the body with an error before its end, so the backend
//! never moves such an upload into place.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use s3s::StdError;
use s3s::dto::StreamingBlob;
use s3s::stream::{ByteStream, RemainingLength};

use crate::body_deadline::{BodyClock, TimeLimit};
use crate::digest::{DigestCheck, DigestMismatch};

/// What went wrong with a body, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFault {
    TooLarge,
    Broken,
    TimedOut(TimeLimit),
    /// Names the header whose digest the body did not match.
    BadDigest(&'static str),
}

/// The caller's side of a watched body.
#[derive(Debug, Clone, Default)]
pub(crate) struct BodyWatch(Arc<OnceLock<BodyFault>>);

impl BodyWatch {
    /// The fault seen while the body was read, if any.
    pub(crate) fn fault(&self) -> Option<BodyFault> {
        self.0.get().copied()
    }

    fn record(&self, fault: BodyFault) {
        // The first fault is the cause; later ones are consequences.
        let _ = self.0.set(fault);
    }
}

/// The error the watched body yields once the limit is passed.
#[derive(Debug, thiserror::Error)]
#[error("upload exceeds the maximum object size")]
pub(crate) struct LimitExceeded;

/// The error the watched body yields when it is too slow.
#[derive(Debug, thiserror::Error)]
#[error("upload body too slow: {0:?}")]
pub(crate) struct TooSlow(TimeLimit);

/// What a watched body enforces.
pub(crate) struct BodyRules {
    /// The most bytes that may go through.
    pub limit: u64,
    /// None: no time limits.
    pub clock: Option<BodyClock>,
    pub digests: DigestCheck,
}

/// A body that fails once more than `limit` bytes went through, once a time limit passes, or
/// at its end when its digests do not match, reporting faults to its watch.
pub(crate) struct WatchedBody {
    inner: StreamingBlob,
    remaining: u64,
    clock: Option<BodyClock>,
    /// Taken when the body ends.
    digests: Option<DigestCheck>,
    /// After a failure the body ends, whatever is left of it.
    failed: bool,
    watch: BodyWatch,
}

impl WatchedBody {
    /// Wraps `body` under `rules`; read the outcome from the returned watch.
    pub(crate) fn wrap(body: StreamingBlob, rules: BodyRules) -> (StreamingBlob, BodyWatch) {
        let watch = BodyWatch::default();
        let watched = WatchedBody {
            inner: body,
            remaining: rules.limit,
            clock: rules.clock,
            digests: Some(rules.digests),
            failed: false,
            watch: watch.clone(),
        };
        (StreamingBlob::new(watched), watch)
    }

    fn fail(&mut self, fault: BodyFault, error: StdError) -> Poll<Option<Result<Bytes, StdError>>> {
        self.watch.record(fault);
        self.failed = true;
        Poll::Ready(Some(Err(error)))
    }
}

impl Stream for WatchedBody {
    type Item = Result<Bytes, StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(None);
        }
        // Checked before reading on, so a body that keeps coming past its deadline fails too.
        if let Some(limit) = this.clock.as_mut().and_then(|c| c.poll_deadline(cx)) {
            return this.fail(BodyFault::TimedOut(limit), Box::new(TooSlow(limit)));
        }
        let item = match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(item) => item,
            Poll::Pending => {
                return match this.clock.as_mut().and_then(|c| c.poll_idle(cx)) {
                    Some(limit) => this.fail(BodyFault::TimedOut(limit), Box::new(TooSlow(limit))),
                    None => Poll::Pending,
                };
            }
        };
        match &item {
            Some(Ok(bytes)) => {
                let len = bytes.len() as u64;
                if len > this.remaining {
                    return this.fail(BodyFault::TooLarge, Box::new(LimitExceeded));
                }
                this.remaining -= len;
                if let Some(clock) = &mut this.clock {
                    clock.progressed();
                }
                if let Some(digests) = &mut this.digests {
                    digests.update(bytes);
                }
            }
            Some(Err(_)) => this.watch.record(BodyFault::Broken),
            None => {
                if let Some(Err(DigestMismatch(header))) =
                    this.digests.take().map(DigestCheck::verify)
                {
                    return this.fail(
                        BodyFault::BadDigest(header),
                        Box::new(DigestMismatch(header)),
                    );
                }
            }
        }
        Poll::Ready(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ByteStream for WatchedBody {
    fn remaining_length(&self) -> RemainingLength {
        self.inner.remaining_length()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::StreamExt;
    use s3s::dto::PutObjectInput;

    use super::*;

    fn limit(limit: u64) -> BodyRules {
        BodyRules {
            limit,
            clock: None,
            digests: DigestCheck::none(),
        }
    }

    fn timed(allowed: Duration, idle: Duration) -> BodyRules {
        BodyRules {
            clock: Some(BodyClock::start(allowed, idle)),
            ..limit(1 << 20)
        }
    }

    /// A body sending `chunk` every `every`, forever.
    fn trickle(chunk: &'static [u8], every: Duration) -> StreamingBlob {
        let stream = futures::stream::unfold((), move |()| async move {
            tokio::time::sleep(every).await;
            Some((Ok::<_, std::io::Error>(Bytes::from_static(chunk)), ()))
        });
        StreamingBlob::wrap(stream)
    }

    fn blob(chunks: Vec<Result<&'static [u8], std::io::Error>>) -> StreamingBlob {
        let items: Vec<Result<Bytes, std::io::Error>> = chunks
            .into_iter()
            .map(|c| c.map(Bytes::from_static))
            .collect();
        StreamingBlob::wrap(futures::stream::iter(items))
    }

    async fn drain(mut body: StreamingBlob) -> (usize, usize) {
        let (mut bytes, mut errors) = (0, 0);
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(b) => bytes += b.len(),
                Err(_) => errors += 1,
            }
        }
        (bytes, errors)
    }

    #[tokio::test]
    async fn passes_bodies_up_to_the_limit() {
        let (body, watch) = WatchedBody::wrap(blob(vec![Ok(b"abc"), Ok(b"de")]), limit(5));
        assert_eq!(drain(body).await, (5, 0));
        assert_eq!(watch.fault(), None);
    }

    #[tokio::test]
    async fn fails_past_the_limit_and_says_so() {
        let (body, watch) = WatchedBody::wrap(blob(vec![Ok(b"abc"), Ok(b"def")]), limit(5));
        assert_eq!(drain(body).await, (3, 1));
        assert_eq!(watch.fault(), Some(BodyFault::TooLarge));
    }

    #[tokio::test]
    async fn reports_a_broken_body() {
        let broken = Err(std::io::Error::other("connection reset"));
        let (body, watch) = WatchedBody::wrap(blob(vec![Ok(b"abc"), broken]), limit(100));
        assert_eq!(drain(body).await, (3, 1));
        assert_eq!(watch.fault(), Some(BodyFault::Broken));
    }

    #[tokio::test]
    async fn a_body_that_stops_arriving_fails_after_the_idle_timeout() {
        let stalled = StreamingBlob::wrap(
            futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"abc"))])
                .chain(futures::stream::pending()),
        );
        let idle = Duration::from_millis(100);
        let (body, watch) = WatchedBody::wrap(stalled, timed(Duration::from_secs(60), idle));
        let drained = tokio::time::timeout(Duration::from_secs(5), drain(body)).await;
        assert_eq!(drained.expect("the idle timeout ends the body"), (3, 1));
        assert_eq!(
            watch.fault(),
            Some(BodyFault::TimedOut(TimeLimit::Idle(idle)))
        );
    }

    #[tokio::test]
    async fn a_steady_trickle_fails_at_the_deadline() {
        let body = trickle(b"x", Duration::from_millis(20));
        let rules = timed(Duration::from_millis(300), Duration::from_secs(60));
        let (body, watch) = WatchedBody::wrap(body, rules);
        let drained = tokio::time::timeout(Duration::from_secs(5), drain(body)).await;
        let (bytes, errors) = drained.expect("the deadline ends the body");
        assert!(bytes > 0, "the trickle got through until the deadline");
        assert_eq!(errors, 1);
        assert_eq!(
            watch.fault(),
            Some(BodyFault::TimedOut(TimeLimit::Deadline))
        );
    }

    #[tokio::test]
    async fn a_body_within_its_time_limits_passes() {
        let rules = timed(Duration::from_secs(60), Duration::from_secs(60));
        let (body, watch) = WatchedBody::wrap(blob(vec![Ok(b"abc"), Ok(b"de")]), rules);
        assert_eq!(drain(body).await, (5, 0));
        assert_eq!(watch.fault(), None);
    }

    #[tokio::test]
    async fn a_digest_mismatch_fails_the_body_before_its_end() {
        let mut input = PutObjectInput::builder()
            .bucket("b".to_owned())
            .key("k".to_owned())
            .build()
            .expect("input");
        // base64 of MD5("hello world").
        input.content_md5 = Some("XrY7u+Ae7tCTyyK7j1rNww==".to_owned());
        let digests = |input: &PutObjectInput| DigestCheck::for_put(input, None).expect("digests");

        let good = BodyRules {
            digests: digests(&input),
            ..limit(100)
        };
        let (body, watch) = WatchedBody::wrap(blob(vec![Ok(b"hello "), Ok(b"world")]), good);
        assert_eq!(drain(body).await, (11, 0));
        assert_eq!(watch.fault(), None);

        let bad = BodyRules {
            digests: digests(&input),
            ..limit(100)
        };
        let (mut body, watch) = WatchedBody::wrap(blob(vec![Ok(b"hello "), Ok(b"there")]), bad);
        assert!(matches!(body.next().await, Some(Ok(_))));
        assert!(matches!(body.next().await, Some(Ok(_))));
        // The reader sees an error where the end would be, so it never finishes the write.
        assert!(matches!(body.next().await, Some(Err(_))));
        assert!(body.next().await.is_none());
        assert_eq!(watch.fault(), Some(BodyFault::BadDigest("Content-MD5")));
    }
}
