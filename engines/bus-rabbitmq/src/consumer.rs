//! A consumer of one subscription queue, on its own channel with a prefetch limit and manual
//! acknowledgement, that re-subscribes by itself when its channel or connection goes away.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lapin::options::{BasicConsumeOptions, BasicQosOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, message::DeliveryResult};
use tokio::sync::mpsc;
use tracing::warn;

use super::link::{Link, close_quietly};
use super::settle::RabbitSettle;
use super::topology::{declare_subscription, short};
use super::{RECONNECT_PATIENCE, unavailable, wire};
use imgpipe_contract::bus::{BusError, Consumer, Delivery, Subscription};

const FIRST_PAUSE: Duration = Duration::from_millis(50);
const LONGEST_PAUSE: Duration = Duration::from_secs(5);

/// Counts a delivery this process holds unsettled, from its arrival until it is settled or
/// dropped; the count is part of the queue depth.
pub(super) struct InFlight(Arc<AtomicU64>);

impl InFlight {
    fn new(counter: &Arc<AtomicU64>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        InFlight(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

enum Event {
    Delivery(Box<lapin::message::Delivery>, InFlight),
    /// The broker cancelled the consumer or its channel closed (with the error, if any).
    Ended(Option<lapin::Error>),
}

/// A consumer's channel, shared by the consumer and every delivery it handed out: a delivery can
/// only be settled on its channel, so the channel stays open until the last of them is gone, and
/// is then closed, which returns any delivery still unsettled to the queue.
pub(super) struct ChannelGuard {
    channel: Channel,
    /// lapin's consumer, kept for its callback; dropped only after the channel closed, since
    /// lapin would otherwise cancel it in the background and, should the channel close first,
    /// take that failure for a broken connection.
    consumer: Option<lapin::Consumer>,
}

impl Drop for ChannelGuard {
    fn drop(&mut self) {
        let (channel, consumer) = (self.channel.clone(), self.consumer.take());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                close_quietly(&channel).await;
                drop(consumer);
            });
        }
    }
}

/// The current subscription and the deliveries its callback forwarded.
struct Active {
    guard: Arc<ChannelGuard>,
    deliveries: mpsc::UnboundedReceiver<Event>,
}

pub(super) struct RabbitConsumer {
    link: Arc<Link>,
    subscription: Subscription,
    prefetch: u16,
    active: Option<Active>,
    /// When the current outage began, to give up after `RECONNECT_PATIENCE`.
    down_since: Option<Instant>,
    pause: Duration,
}

impl RabbitConsumer {
    pub(super) async fn start(
        link: Arc<Link>,
        subscription: &Subscription,
        prefetch: u16,
    ) -> Result<Self, BusError> {
        let mut consumer = RabbitConsumer {
            link,
            subscription: subscription.clone(),
            prefetch,
            active: None,
            down_since: None,
            pause: FIRST_PAUSE,
        };
        consumer.active = Some(consumer.subscribe(RECONNECT_PATIENCE).await?);
        Ok(consumer)
    }

    async fn subscribe(&self, patience: Duration) -> Result<Active, BusError> {
        let live = self.link.live(patience).await?;
        let channel = live.channel().await?;
        let names = self.link.names();
        declare_subscription(&channel, names, &self.subscription).await?;
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| unavailable("setting the prefetch", e))?;
        let queue = names.queue(&self.subscription.queue);
        let consumer = channel
            .basic_consume(
                short(&queue)?,
                ShortString::from(""),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| unavailable(&format!("consuming from {queue}"), e))?;
        let (sender, deliveries) = mpsc::unbounded_channel();
        let counter = self.link.in_flight(&self.subscription.queue);
        // lapin calls this synchronously, in arrival order, and spawns the future it returns;
        // forwarding here (not in the future) keeps deliveries in queue order. The channel is
        // bounded in practice by the prefetch.
        consumer.set_delegate(move |result: DeliveryResult| {
            let event = match result {
                Ok(Some(delivery)) => Event::Delivery(Box::new(delivery), InFlight::new(&counter)),
                Ok(None) => Event::Ended(None),
                Err(e) => Event::Ended(Some(e)),
            };
            let _ = sender.send(event);
            std::future::ready(())
        });
        Ok(Active {
            guard: Arc::new(ChannelGuard {
                channel,
                consumer: Some(consumer),
            }),
            deliveries,
        })
    }

    /// Drops the current subscription (its channel closes once no delivery from it is held) and
    /// waits a little before the next try, longer each time in a row.
    async fn lost(&mut self, why: &str) -> Result<(), BusError> {
        self.active = None;
        let since = *self.down_since.get_or_insert_with(Instant::now);
        if since.elapsed() > RECONNECT_PATIENCE {
            return Err(BusError::Unavailable(format!(
                "consumer of {} could not resubscribe for {RECONNECT_PATIENCE:?}: {why}",
                self.subscription.queue
            )));
        }
        warn!(queue = %self.subscription.queue, reason = why, "resubscribing");
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(LONGEST_PAUSE);
        Ok(())
    }
}

#[async_trait]
impl Consumer for RabbitConsumer {
    async fn next(&mut self) -> Result<Delivery, BusError> {
        loop {
            let Some(active) = self.active.as_mut() else {
                let since = *self.down_since.get_or_insert_with(Instant::now);
                match self
                    .subscribe(RECONNECT_PATIENCE.saturating_sub(since.elapsed()))
                    .await
                {
                    Ok(active) => {
                        self.active = Some(active);
                        self.down_since = None;
                    }
                    Err(e) => self.lost(&e.to_string()).await?,
                }
                continue;
            };
            match active.deliveries.recv().await {
                Some(Event::Delivery(delivery, in_flight)) => {
                    // Its channel closed since it arrived: the broker will deliver it again.
                    if !delivery.acker.usable() {
                        continue;
                    }
                    self.pause = FIRST_PAUSE;
                    let delivery = *delivery;
                    let received = wire::received(
                        delivery.routing_key.as_str(),
                        &delivery.properties,
                        delivery.data,
                    );
                    let settle = RabbitSettle::new(
                        self.link.clone(),
                        &self.subscription.queue,
                        received.message.clone(),
                        delivery.acker,
                        active.guard.clone(),
                        in_flight,
                    );
                    return Ok(Delivery::new(
                        received.message,
                        received.attempt,
                        delivery.redelivered,
                        Box::new(settle),
                    ));
                }
                Some(Event::Ended(Some(e))) => self.lost(&e.to_string()).await?,
                Some(Event::Ended(None)) | None => self.lost("consumer cancelled").await?,
            }
        }
    }
}
