//! The RabbitMQ bus: every message goes to one durable topic exchange with its topic as routing
//! key; each subscription is a durable quorum queue bound to its patterns, with delay-bucket
//! queues for retries and a queue of dead letters beside it (see [`topology`] for the layout).
//!
//! Guarantees and limits:
//! - `publish` returns once the broker confirmed the message (persistent, publisher confirms).
//!   A message published to a topic no queue is bound to is dropped, as with the embedded bus.
//! - Delivery is at least once: a delivery that is neither settled nor dropped is requeued when
//!   its channel or connection closes; a dropped one is requeued at once. A retry or dead-letter
//!   publishes a copy before acknowledging the original, so a crash in between duplicates; so
//!   does replaying a dead letter, which publishes it back into its queue (attempt 1) before
//!   acknowledging it in the dead letters.
//! - One consumer of a queue sees one publisher's messages in publish order; a retried message
//!   re-enters the queue at the back once its delay bucket expires it, and messages requeued
//!   after a lost connection may come back out of order.
//! - Retry delays are rounded up to the next bucket (125 ms doubling to about 68 minutes; longer
//!   delays wait 68 minutes).
//! - `queue_depth` counts ready messages (queue and retry buckets) plus deliveries held unsettled
//!   by this process, not those held by other processes (see its docs).
//! - After a dropped connection, `publish` and consumers reconnect (with backoff, for up to
//!   `RECONNECT_PATIENCE`, then they report the bus unavailable); deliveries held from the old
//!   connection fail to settle and the broker delivers them again.

mod consumer;
mod dead;
mod link;
mod settle;
mod topology;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lapin::types::AMQPValue;

use self::consumer::RabbitConsumer;
use self::link::{Link, close_quietly, publish_confirmed};
use self::topology::{declare_subscription, ready_count, retry_buckets};
use imgpipe_contract::bus::{Bus, BusError, Consumer, DeadLetter, Message, Subscription};
use imgpipe_contract::config::BusConfig;

/// How long publishing and consuming keep trying to reconnect before reporting the bus
/// unavailable.
const RECONNECT_PATIENCE: Duration = Duration::from_secs(30);

/// A [`Bus`] on a RabbitMQ broker (3.10 or later). Clones share one connection; it closes when
/// the last clone, consumer and held delivery are gone.
#[derive(Clone)]
pub struct RabbitBus {
    link: Arc<Link>,
    prefetch: u16,
}

impl RabbitBus {
    /// Connects to `config.url` (retrying for up to 30 s, so the broker may still be starting)
    /// and declares the exchange. Names start with `config.prefix`; each consumer holds at most
    /// `config.prefetch` unsettled deliveries. `max_attempts` is the retry policy's
    /// (`retry.max_attempts`): the queues' delivery limit, so a message that crashes every
    /// consumer is dead-lettered after that many deliveries. Queues declared earlier with another
    /// limit must be deleted first (RabbitMQ refuses to redeclare a queue with other arguments).
    pub async fn connect(config: &BusConfig, max_attempts: u32) -> Result<Self, BusError> {
        let link = Arc::new(Link::new(&config.url, &config.prefix, max_attempts));
        link.live(RECONNECT_PATIENCE).await?;
        Ok(RabbitBus {
            link,
            prefetch: config.prefetch,
        })
    }
}

fn unavailable(what: &str, error: lapin::Error) -> BusError {
    BusError::Unavailable(format!("{what}: {error}"))
}

#[async_trait]
impl Bus for RabbitBus {
    async fn publish(&self, message: Message) -> Result<(), BusError> {
        let properties = wire::properties(&message, &[(wire::ATTEMPT, AMQPValue::LongInt(1))])?;
        let exchange = self.link.names().exchange();
        let (message, exchange) = (&message, &exchange);
        self.link
            .retrying(RECONNECT_PATIENCE, |live| {
                let properties = properties.clone();
                async move {
                    publish_confirmed(
                        &live.publisher,
                        exchange,
                        &message.topic,
                        false,
                        &message.payload,
                        properties,
                    )
                    .await
                }
            })
            .await
    }

    async fn subscribe(&self, subscription: &Subscription) -> Result<Box<dyn Consumer>, BusError> {
        self.link.remember(subscription);
        let consumer =
            RabbitConsumer::start(self.link.clone(), subscription, self.prefetch).await?;
        Ok(Box::new(consumer))
    }

    async fn declare(&self, subscription: &Subscription) -> Result<(), BusError> {
        self.link.remember(subscription);
        let names = self.link.names();
        self.link
            .retrying(RECONNECT_PATIENCE, |live| async move {
                let channel = live.channel().await?;
                let declared = declare_subscription(&channel, names, subscription).await;
                close_quietly(&channel).await;
                declared
            })
            .await
    }

    /// Reads the dead-letter queue without consuming it: takes up to `limit` messages
    /// unacknowledged, then closes the channel, which puts them all back in their order.
    async fn dead_letters(&self, queue: &str, limit: u32) -> Result<Vec<DeadLetter>, BusError> {
        dead::list(&self.link, queue, limit).await
    }

    /// Publishes each dead letter (confirmed) into the subscription queue, then acknowledges it.
    async fn replay_dead_letters(&self, queue: &str, limit: u32) -> Result<u32, BusError> {
        dead::replay(&self.link, queue, limit).await
    }

    /// Ready messages in the queue and its retry buckets, plus the deliveries this process holds
    /// unsettled. Deliveries other processes hold are not counted: AMQP reports only ready
    /// messages, and the management API (which has the unacknowledged count) may not be enabled.
    /// While messages move between queues the sum can be briefly off by those in transit.
    async fn queue_depth(&self, queue: &str) -> Result<u64, BusError> {
        let names = self.link.names();
        let ready = self
            .link
            .retrying(RECONNECT_PATIENCE, |live| async move {
                let mut channel = live.channel().await?;
                let Some(mut total) = ready_count(&channel, &names.queue(queue)).await? else {
                    return Ok(0);
                };
                for bucket in retry_buckets() {
                    match ready_count(&channel, &names.retry(queue, bucket)).await? {
                        Some(n) => total += n,
                        // A missing bucket closed the channel; the others are still worth a look.
                        None => channel = live.channel().await?,
                    }
                }
                close_quietly(&channel).await;
                Ok(total)
            })
            .await?;
        Ok(ready + self.link.in_flight_count(queue))
    }

    async fn ping(&self) -> Result<(), BusError> {
        let live = self.link.live(Duration::ZERO).await?;
        if live.connection.status().connected() {
            Ok(())
        } else {
            Err(BusError::Unavailable(
                "RabbitMQ connection is not open".to_owned(),
            ))
        }
    }
}
