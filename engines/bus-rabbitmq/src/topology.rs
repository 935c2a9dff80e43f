//! Names and declarations of the exchange and queues behind each subscription.
//!
//! For a subscription queue `Q` under prefix `P`:
//! - `P.events`: the durable topic exchange every message is published to (routing key = topic);
//! - `P.Q`: a durable quorum queue bound to the subscription's patterns. Its delivery limit is the
//!   retry policy's attempts and its dead-letter target the dead queue: a message whose deliveries
//!   keep killing their consumer (never settled, so never counted in `x-attempt`) is counted by
//!   the broker in `x-delivery-count`, which the attempt a consumer sees includes, so the worker
//!   gives up on it after the same number of attempts as on any failure; should even that fail,
//!   the broker dead-letters it one delivery later (RabbitMQ 4 would otherwise drop it after 20);
//! - `P.Q.retry.<ms>`: one durable classic queue per delay bucket, without consumers. Messages wait
//!   there for the bucket's TTL, then the broker dead-letters them back into `P.Q`. One queue per
//!   bucket, because TTL only expires messages at the head of a queue: mixed delays in one queue
//!   would make a short delay wait behind a long one;
//! - `P.Q.dead`: a durable classic queue holding dead letters. Classic rather than quorum because
//!   reading it returns messages with a requeue, and a quorum queue would count those as delivery
//!   attempts (and RabbitMQ 4 would drop them after 20 reads).

use std::time::Duration;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, ExchangeKind};

use super::unavailable;
use super::wire::text;
use imgpipe_contract::bus::{BusError, Subscription};

/// The shortest retry bucket; the others double up to `RETRY_BUCKETS` buckets.
const SHORTEST_BUCKET_MS: u64 = 125;
/// 125 ms, 250 ms, ... 4096 s (about 68 minutes).
const RETRY_BUCKETS: u32 = 16;

/// Turns subscription queue names into broker names under one prefix.
#[derive(Debug, Clone)]
pub(super) struct Names {
    prefix: String,
    /// The subscription queues' `x-delivery-limit`: deliveries returned unsettled before the
    /// broker dead-letters a message.
    delivery_limit: i32,
}

impl Names {
    pub(super) fn new(prefix: &str, max_attempts: u32) -> Self {
        Names {
            prefix: prefix.trim_end_matches('.').to_owned(),
            delivery_limit: i32::try_from(max_attempts.max(1)).unwrap_or(i32::MAX),
        }
    }

    fn join(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    pub(super) fn exchange(&self) -> String {
        self.join("events")
    }

    pub(super) fn queue(&self, queue: &str) -> String {
        self.join(queue)
    }

    pub(super) fn dead(&self, queue: &str) -> String {
        format!("{}.dead", self.queue(queue))
    }

    pub(super) fn retry(&self, queue: &str, bucket_ms: u64) -> String {
        format!("{}.retry.{bucket_ms}", self.queue(queue))
    }
}

/// The delay buckets, shortest first.
pub(super) fn retry_buckets() -> impl Iterator<Item = u64> {
    (0..RETRY_BUCKETS).map(|k| SHORTEST_BUCKET_MS << k)
}

/// The bucket a retry waits in: the shortest one not shorter than `delay`, so a retry never comes
/// back early; delays beyond the longest bucket wait for the longest one.
pub(super) fn bucket_for(delay: Duration) -> u64 {
    let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    retry_buckets()
        .find(|bucket| *bucket >= ms)
        .unwrap_or(SHORTEST_BUCKET_MS << (RETRY_BUCKETS - 1))
}

/// A broker name as an AMQP short string (at most 255 bytes).
pub(super) fn short(name: &str) -> Result<ShortString, BusError> {
    ShortString::try_new(name).map_err(|e| BusError::Unavailable(format!("name {name:?}: {e}")))
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

/// Declares the exchange every message goes to.
pub(super) async fn declare_exchange(channel: &Channel, names: &Names) -> Result<(), BusError> {
    let exchange = names.exchange();
    channel
        .exchange_declare(
            short(&exchange)?,
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| unavailable(&format!("declaring exchange {exchange}"), e))
}

/// Declares a subscription's queues and bindings; idempotent as long as the arguments match
/// (a queue declared elsewhere with other arguments makes this fail with PRECONDITION_FAILED).
pub(super) async fn declare_subscription(
    channel: &Channel,
    names: &Names,
    subscription: &Subscription,
) -> Result<(), BusError> {
    declare_exchange(channel, names).await?;
    let queue = names.queue(&subscription.queue);
    let dead = names.dead(&subscription.queue);
    declare_dead_queue(channel, names, &subscription.queue).await?;
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), text("quorum"));
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongInt(names.delivery_limit),
    );
    args.insert("x-dead-letter-exchange".into(), text(""));
    args.insert("x-dead-letter-routing-key".into(), text(&dead));
    declare_queue(channel, &queue, args).await?;
    for bucket in retry_buckets() {
        declare_retry_queue(channel, names, &subscription.queue, bucket).await?;
    }
    let exchange = names.exchange();
    for pattern in &subscription.topics {
        channel
            .queue_bind(
                short(&queue)?,
                short(&exchange)?,
                short(pattern)?,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| unavailable(&format!("binding {queue} to {pattern}"), e))?;
    }
    Ok(())
}

/// Declares one delay bucket of a subscription queue (also done just before each retry, so a
/// bucket deleted by hand comes back instead of the broker silently dropping the retry).
pub(super) async fn declare_retry_queue(
    channel: &Channel,
    names: &Names,
    queue: &str,
    bucket_ms: u64,
) -> Result<(), BusError> {
    let mut args = FieldTable::default();
    args.insert(
        "x-message-ttl".into(),
        AMQPValue::LongLongInt(i64::try_from(bucket_ms).unwrap_or(i64::MAX)),
    );
    args.insert("x-dead-letter-exchange".into(), text(""));
    args.insert(
        "x-dead-letter-routing-key".into(),
        text(&names.queue(queue)),
    );
    declare_queue(channel, &names.retry(queue, bucket_ms), args).await
}

/// Declares a subscription queue's dead letters (also done before each dead-lettering, for the
/// same reason as [`declare_retry_queue`]).
pub(super) async fn declare_dead_queue(
    channel: &Channel,
    names: &Names,
    queue: &str,
) -> Result<(), BusError> {
    declare_queue(channel, &names.dead(queue), FieldTable::default()).await
}

async fn declare_queue(channel: &Channel, name: &str, args: FieldTable) -> Result<(), BusError> {
    channel
        .queue_declare(short(name)?, durable(), args)
        .await
        .map(drop)
        .map_err(|e| unavailable(&format!("declaring queue {name}"), e))
}

/// Ready messages in a queue, or None if it does not exist (the broker then closes `channel`).
pub(super) async fn ready_count(channel: &Channel, name: &str) -> Result<Option<u64>, BusError> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    match channel
        .queue_declare(short(name)?, passive, FieldTable::default())
        .await
    {
        Ok(queue) => Ok(Some(u64::from(queue.message_count()))),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(unavailable(&format!("counting queue {name}"), e)),
    }
}

pub(super) fn is_not_found(error: &lapin::Error) -> bool {
    matches!(
        error.kind(),
        lapin::ErrorKind::ProtocolError(e) if *e.kind() == AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_never_come_back_early() {
        assert_eq!(bucket_for(Duration::ZERO), 125);
        assert_eq!(bucket_for(Duration::from_millis(300)), 500);
        assert_eq!(bucket_for(Duration::from_secs(1)), 1000);
        assert_eq!(bucket_for(Duration::from_secs(60)), 64_000);
        assert_eq!(bucket_for(Duration::from_secs(86_400)), 4_096_000);
        assert_eq!(retry_buckets().count(), 16);
    }

    #[test]
    fn names_share_the_prefix() {
        let names = Names::new("imgpipe", 5);
        assert_eq!(names.exchange(), "imgpipe.events");
        assert_eq!(names.queue("resizer"), "imgpipe.resizer");
        assert_eq!(names.dead("resizer"), "imgpipe.resizer.dead");
        assert_eq!(names.retry("resizer", 500), "imgpipe.resizer.retry.500");
        assert_eq!(Names::new("", 5).queue("resizer"), "resizer");
    }
}
