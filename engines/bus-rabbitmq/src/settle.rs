//! Settling one RabbitMQ delivery. Retry and dead-letter publish a copy (confirmed by the broker)
//! before acknowledging the original, so a crash in between duplicates a message rather than
//! losing it. A delivery dropped unsettled is handed back to the broker at once.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use lapin::types::AMQPValue;
use lapin::{Acker, Channel};

use super::consumer::{ChannelGuard, InFlight};
use super::link::{Link, publish_confirmed};
use super::topology::{bucket_for, declare_dead_queue, declare_retry_queue};
use super::{unavailable, wire};
use imgpipe_contract::bus::{BusError, Message, Settle};

pub(super) struct RabbitSettle {
    link: Arc<Link>,
    queue: String,
    /// The message as delivered, for the copy a retry or dead-letter publishes.
    message: Message,
    acker: Acker,
    /// Keeps the delivery's channel open while the delivery is held, even if its consumer is
    /// dropped first: closing the channel would requeue it and make this settlement fail.
    channel: Arc<ChannelGuard>,
    _in_flight: InFlight,
    settled: bool,
}

impl RabbitSettle {
    pub(super) fn new(
        link: Arc<Link>,
        queue: &str,
        message: Message,
        acker: Acker,
        channel: Arc<ChannelGuard>,
        in_flight: InFlight,
    ) -> Self {
        RabbitSettle {
            link,
            queue: queue.to_owned(),
            message,
            acker,
            channel,
            _in_flight: in_flight,
            settled: false,
        }
    }

    /// Fails when the delivery's channel is gone: the broker has requeued (or will requeue) the
    /// message, so publishing a copy now would only duplicate it.
    fn check_usable(&self) -> Result<(), BusError> {
        if self.acker.usable() {
            Ok(())
        } else {
            Err(BusError::Unavailable(
                "the delivery's channel closed; RabbitMQ will deliver the message again".to_owned(),
            ))
        }
    }

    async fn ack_original(&mut self) -> Result<(), BusError> {
        self.check_usable()?;
        self.settled = true;
        match self.acker.ack(BasicAckOptions::default()).await {
            Ok(true) => Ok(()),
            Ok(false) => self.check_usable(),
            Err(e) => Err(unavailable("acknowledging a delivery", e)),
        }
    }

    /// Publishes a copy of the message straight into `queue` (through the default exchange).
    async fn publish_copy(
        &self,
        channel: &Channel,
        queue: &str,
        extra: &[(&str, AMQPValue)],
    ) -> Result<(), BusError> {
        let properties = wire::properties(&self.message, extra)?;
        publish_confirmed(channel, "", queue, true, &self.message.payload, properties).await
    }
}

#[async_trait]
impl Settle for RabbitSettle {
    async fn ack(mut self: Box<Self>) -> Result<(), BusError> {
        self.ack_original().await
    }

    async fn retry(mut self: Box<Self>, attempt: u32, delay: Duration) -> Result<(), BusError> {
        self.check_usable()?;
        let bucket = bucket_for(delay);
        let names = self.link.names().clone();
        // No reconnecting here: the copy must go out on the connection the delivery came on,
        // or the original could not be acknowledged after it.
        let live = self.link.live(Duration::ZERO).await?;
        declare_retry_queue(&live.publisher, &names, &self.queue, bucket).await?;
        let next = i32::try_from(attempt.saturating_add(1)).unwrap_or(i32::MAX);
        self.publish_copy(
            &live.publisher,
            &names.retry(&self.queue, bucket),
            &[(wire::ATTEMPT, AMQPValue::LongInt(next))],
        )
        .await?;
        self.ack_original().await
    }

    async fn dead_letter(mut self: Box<Self>, attempt: u32, reason: &str) -> Result<(), BusError> {
        self.check_usable()?;
        let names = self.link.names().clone();
        let live = self.link.live(Duration::ZERO).await?;
        declare_dead_queue(&live.publisher, &names, &self.queue).await?;
        let attempt = i32::try_from(attempt).unwrap_or(i32::MAX);
        self.publish_copy(
            &live.publisher,
            &names.dead(&self.queue),
            &[
                (wire::ATTEMPT, AMQPValue::LongInt(attempt)),
                (wire::DEAD_REASON, wire::text(reason)),
            ],
        )
        .await?;
        self.ack_original().await
    }
}

impl Drop for RabbitSettle {
    fn drop(&mut self) {
        // Unsettled (dropped, or a settlement failed before acknowledging): give the message back
        // now instead of holding a prefetch slot until the channel closes.
        if !self.settled
            && self.acker.usable()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (acker, guard) = (self.acker.clone(), self.channel.clone());
            runtime.spawn(async move {
                let requeue = BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                };
                let _ = acker.nack(requeue).await;
                // Only now may the channel close (if this was the last delivery held from it).
                drop(guard);
            });
        }
    }
}
