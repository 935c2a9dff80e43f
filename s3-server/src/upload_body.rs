//! Watches an upload body while the backend streams it to disk. The backend reports any body
//! failure as InternalError; the watch tells the client what really happened: the body passed
//! the size limit (aws-chunked and multipart bodies reveal their size only as they arrive), or
//! it broke off (client gone, bad chunk signature, checksum mismatch).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures::Stream;
use s3s::StdError;
use s3s::dto::StreamingBlob;
use s3s::stream::{ByteStream, RemainingLength};

/// What went wrong with a body, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFault {
    TooLarge,
    Broken,
}

const FINE: u8 = 0;
const TOO_LARGE: u8 = 1;
const BROKEN: u8 = 2;

/// The caller's side of a watched body.
#[derive(Debug, Clone, Default)]
pub(crate) struct BodyWatch(Arc<AtomicU8>);

impl BodyWatch {
    /// The fault seen while the body was read, if any.
    pub(crate) fn fault(&self) -> Option<BodyFault> {
        match self.0.load(Ordering::Acquire) {
            TOO_LARGE => Some(BodyFault::TooLarge),
            BROKEN => Some(BodyFault::Broken),
            _ => None,
        }
    }

    fn record(&self, fault: u8) {
        // The first fault is the cause; later ones are consequences.
        let _ = self
            .0
            .compare_exchange(FINE, fault, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// The error the watched body yields once the limit is passed.
#[derive(Debug, thiserror::Error)]
#[error("upload exceeds the maximum object size")]
pub(crate) struct LimitExceeded;

/// A body that fails once more than `limit` bytes went through, reporting faults to its watch.
pub(crate) struct WatchedBody {
    inner: StreamingBlob,
    remaining: u64,
    watch: BodyWatch,
}

impl WatchedBody {
    /// Wraps `body`, capped at `limit` bytes; read the outcome from the returned watch.
    pub(crate) fn wrap(body: StreamingBlob, limit: u64) -> (StreamingBlob, BodyWatch) {
        let watch = BodyWatch::default();
        let watched = WatchedBody {
            inner: body,
            remaining: limit,
            watch: watch.clone(),
        };
        (StreamingBlob::new(watched), watch)
    }
}

impl Stream for WatchedBody {
    type Item = Result<Bytes, StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let item = ready!(Pin::new(&mut this.inner).poll_next(cx));
        match &item {
            Some(Ok(bytes)) => {
                let len = bytes.len() as u64;
                if len > this.remaining {
                    this.watch.record(TOO_LARGE);
                    return Poll::Ready(Some(Err(Box::new(LimitExceeded))));
                }
                this.remaining -= len;
            }
            Some(Err(_)) => this.watch.record(BROKEN),
            None => {}
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
    use futures::StreamExt;

    use super::*;

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
        let (body, watch) = WatchedBody::wrap(blob(vec![Ok(b"abc"), Ok(b"de")]), 5);
        assert_eq!(drain(body).await, (5, 0));
        assert_eq!(watch.fault(), None);
    }

    #[tokio::test]
    async fn fails_past_the_limit_and_says_so() {
        let (body, watch) = WatchedBody::wrap(blob(vec![Ok(b"abc"), Ok(b"def")]), 5);
        assert_eq!(drain(body).await, (3, 1));
        assert_eq!(watch.fault(), Some(BodyFault::TooLarge));
    }

    #[tokio::test]
    async fn reports_a_broken_body() {
        let broken = Err(std::io::Error::other("connection reset"));
        let (body, watch) = WatchedBody::wrap(blob(vec![Ok(b"abc"), broken]), 100);
        assert_eq!(drain(body).await, (3, 1));
        assert_eq!(watch.fault(), Some(BodyFault::Broken));
    }
}
