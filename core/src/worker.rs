//! The consumer runtime every stage shares: bounded concurrency, each message handled in its own
//! task (a panic fails that message, not the worker), retry with exponential backoff for transient
//! errors and bad input, dead-lettering after the last attempt (or at once for a message that can
//! never be understood), and a [`StageFailed`] event so the image's document records why.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Semaphore;
use tracing::{Instrument, info_span, warn};

use crate::bus::{Bus, BusError, Delivery, Message, Subscription, headers};
use crate::event::{StageFailed, Topic};
use crate::metrics::{Metrics, Outcome};

/// Pause before subscribing again after a consumer failed.
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(1);

/// How often and how patiently a stage retries.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A handler running longer than this is abandoned and retried.
    pub handler_timeout: Duration,
}

impl RetryPolicy {
    /// Exponential backoff: base, 2*base, 4*base ... capped at `max_delay`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Might work later (store or bus unavailable): retried with backoff.
    #[error("{0}")]
    Transient(String),
    /// The image itself is unusable (corrupt, truncated, hostile, over a limit). Retried with
    /// backoff all the same, then dead-lettered after the last attempt: a decoder failing under
    /// memory pressure, or an object read before an eventually consistent store has all of it,
    /// looks exactly like this, and a poison image still costs at most `max_attempts` tries.
    #[error("{0}")]
    BadInput(String),
    /// Can never work, however often tried (a message we cannot parse, an unknown schema, a
    /// handler that panicked): dead-lettered at once.
    #[error("{0}")]
    Permanent(String),
}

/// One pipeline stage's message handler. Must be idempotent: messages arrive at least once.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Stage name recorded in failures, spans and metrics.
    fn stage(&self) -> &'static str;

    /// Handles one message; returns once its side effects are durable.
    async fn handle(&self, message: &Message) -> Result<(), HandlerError>;

    /// Which image a message concerns, to attribute a failure. Defaults to the `image-id` header.
    fn image_id(&self, message: &Message) -> Option<String> {
        message.header(headers::IMAGE_ID).map(str::to_owned)
    }
}

/// Consumes `subscription` until `shutdown` resolves, then waits for in-flight messages.
pub async fn run(
    bus: Arc<dyn Bus>,
    subscription: Subscription,
    handler: Arc<dyn Handler>,
    policy: RetryPolicy,
    concurrency: usize,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BusError> {
    let mut consumer = bus.subscribe(&subscription).await?;
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => permit.map_err(|_| BusError::Closed)?,
        };
        let delivery = tokio::select! {
            _ = &mut shutdown => break,
            delivery = consumer.next() => delivery,
        };
        let delivery = match delivery {
            Ok(delivery) => delivery,
            Err(e) => {
                // Broker or database gone: back off and subscribe again; whatever was in
                // flight is redelivered by the bus.
                warn!(error = %e, queue = %subscription.queue, "consumer failed, resubscribing");
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(RESUBSCRIBE_DELAY) => {}
                }
                if let Ok(fresh) = bus.subscribe(&subscription).await {
                    consumer = fresh;
                }
                continue;
            }
        };
        let (bus, handler, policy, metrics) = (
            bus.clone(),
            handler.clone(),
            policy.clone(),
            metrics.clone(),
        );
        tokio::spawn(async move {
            settle(bus.as_ref(), handler, &policy, &metrics, delivery).await;
            drop(permit);
        });
    }
    // Unsettled deliveries are redelivered anyway; waiting just avoids needless repeats.
    let _ = tokio::time::timeout(
        policy.handler_timeout,
        permits.acquire_many(concurrency.max(1) as u32),
    )
    .await;
    Ok(())
}

async fn settle(
    bus: &dyn Bus,
    handler: Arc<dyn Handler>,
    policy: &RetryPolicy,
    metrics: &Metrics,
    delivery: Delivery,
) {
    let message = delivery.message.clone();
    let stage = handler.stage();
    let image_id = handler.image_id(&message);
    let span = info_span!(
        "handle",
        stage,
        message_id = %message.id,
        image_id = image_id.as_deref().unwrap_or(""),
        traceparent = message.header(headers::TRACEPARENT).unwrap_or(""),
        attempt = delivery.attempt,
    );
    async move {
        let started = Instant::now();
        metrics.started(stage);
        let outcome = {
            let (handler, message) = (handler.clone(), message.clone());
            let task = tokio::spawn(async move { handler.handle(&message).await });
            match tokio::time::timeout(policy.handler_timeout, task).await {
                Ok(Ok(result)) => result,
                Ok(Err(join)) if join.is_panic() => {
                    Err(HandlerError::Permanent("handler panicked".to_owned()))
                }
                Ok(Err(join)) => Err(HandlerError::Transient(join.to_string())),
                Err(_) => Err(HandlerError::Transient(format!(
                    "timed out after {:?}",
                    policy.handler_timeout
                ))),
            }
        };
        let (settled, result) = match outcome {
            Ok(()) => (Outcome::Ok, delivery.ack().await),
            Err(HandlerError::Transient(reason) | HandlerError::BadInput(reason))
                if delivery.attempt < policy.max_attempts =>
            {
                let delay = policy.delay(delivery.attempt);
                warn!(%reason, ?delay, "failed, will retry");
                (Outcome::Retry, delivery.retry(delay).await)
            }
            Err(e) => {
                let reason = e.to_string();
                warn!(%reason, "giving up on message");
                (
                    Outcome::Dead,
                    give_up(bus, stage, image_id, delivery, &reason).await,
                )
            }
        };
        metrics.finished(stage, settled, started.elapsed());
        if let Err(e) = result {
            // The delivery stays unsettled and comes back after its lease: nothing is lost.
            warn!(error = %e, "could not settle delivery");
        }
    }
    .instrument(span)
    .await
}

async fn give_up(
    bus: &dyn Bus,
    stage: &str,
    image_id: Option<String>,
    delivery: Delivery,
    reason: &str,
) -> Result<(), BusError> {
    if let Some(image_id) = image_id {
        let failed = StageFailed {
            image_id: image_id.clone(),
            stage: stage.to_owned(),
            reason: reason.to_owned(),
            attempts: delivery.attempt,
        };
        if let Ok(event) = Message::json(Topic::STAGE_FAILED, &failed) {
            // Publish before dead-lettering: if we crash in between, the redelivery repeats an
            // idempotent failure rather than losing it.
            bus.publish(
                event
                    .follows(&delivery.message)
                    .with_header(headers::IMAGE_ID, image_id),
            )
            .await?;
        }
    }
    delivery.dead_letter(reason).await
}
