//! Object-created notifications: the standard S3 event record, published on the bus before the
//! upload is acknowledged so that an acknowledged object always has its event.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Utc;
use imgpipe_contract::bus::{Bus, BusError};
use imgpipe_contract::event::{CreatedObject, S3EventRecord, object_created_message};

/// The operation that created an object; it names the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CreatedBy {
    Put,
    CompleteMultipartUpload,
    Copy,
}

impl CreatedBy {
    fn event_name(self) -> &'static str {
        match self {
            CreatedBy::Put => "ObjectCreated:Put",
            CreatedBy::CompleteMultipartUpload => "ObjectCreated:CompleteMultipartUpload",
            CreatedBy::Copy => "ObjectCreated:Copy",
        }
    }
}

/// What the store knows about an object just written.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    pub bucket: String,
    /// The key as stored (not URL-encoded).
    pub key: String,
    pub size: u64,
    /// Without the surrounding quotes, as S3 events carry it.
    pub etag: Option<String>,
    pub content_type: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum NotifyError {
    #[error("cannot encode the event: {0}")]
    Encode(#[from] serde_json::Error),
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// Publishes object-created events for the buckets that notify.
pub(crate) struct Notifier {
    bus: Arc<dyn Bus>,
    region: String,
    buckets: HashSet<String>,
    sequencer: Sequencer,
}

impl Notifier {
    pub(crate) fn new(bus: Arc<dyn Bus>, region: &str, buckets: &[String]) -> Self {
        Notifier {
            bus,
            region: region.to_owned(),
            buckets: buckets.iter().cloned().collect(),
            sequencer: Sequencer::default(),
        }
    }

    /// True when objects created in `bucket` are announced.
    pub(crate) fn notifies(&self, bucket: &str) -> bool {
        self.buckets.contains(bucket)
    }

    /// Publishes one `storage.object.created` message for `object`, durably.
    pub(crate) async fn publish(&self, how: CreatedBy, object: Written) -> Result<(), NotifyError> {
        let record = S3EventRecord::object_created(
            "imgpipe:s3",
            &self.region,
            how.event_name(),
            CreatedObject {
                bucket: object.bucket,
                key: object.key,
                size: object.size,
                etag: object.etag,
                content_type: object.content_type,
                sequencer: self.sequencer.next(),
            },
        );
        self.bus.publish(object_created_message(record)?).await?;
        Ok(())
    }
}

/// Strictly increasing 16-hex-digit sequencers: nanoseconds since the epoch, bumped by one when
/// two events share a nanosecond (or the clock steps back), so later writes of a key always
/// compare greater, as consumers expect from S3.
#[derive(Debug, Default)]
struct Sequencer {
    last: AtomicU64,
}

impl Sequencer {
    fn next(&self) -> String {
        let now = Utc::now()
            .timestamp_nanos_opt()
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0);
        let bump = |prev: u64| now.max(prev.saturating_add(1));
        // fetch_update returns the previous value; the closure never refuses, so both arms agree.
        let value = match self
            .last
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |prev| Some(bump(prev)))
        {
            Ok(prev) | Err(prev) => bump(prev),
        };
        format!("{value:016X}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequencer_is_strictly_increasing_and_sixteen_digits() {
        let sequencer = Sequencer::default();
        let mut prev = sequencer.next();
        for _ in 0..1000 {
            let next = sequencer.next();
            assert_eq!(next.len(), 16);
            assert!(next > prev, "{next} should follow {prev}");
            prev = next;
        }
    }
}
