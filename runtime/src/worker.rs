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

use imgpipe_contract::bus::{Bus, BusError, Delivery, Message, Subscription, headers};
use imgpipe_contract::config::RetryPolicy;
use imgpipe_contract::event::{StageFailed, Topic};

use crate::metrics::{Metrics, Outcome};

/// Pause before subscribing again after a consumer failed.
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(1);

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
    /// Can never work, however often tried (a message we cannot parse, an unknown schema):
    /// dead-lettered at once.
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

/// One queue consumer: everything [`Worker::run`] needs.
pub struct Worker {
    pub bus: Arc<dyn Bus>,
    pub subscription: Subscription,
    pub handler: Arc<dyn Handler>,
    pub policy: RetryPolicy,
    /// Messages handled at once (at least 1; `Config::validate` refuses 0).
    pub concurrency: usize,
    pub metrics: Arc<Metrics>,
}

impl Worker {
    /// Consumes the subscription until `shutdown` resolves, then waits for in-flight messages.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), BusError> {
        consume(self, shutdown).await
    }
}

async fn consume(worker: Worker, shutdown: impl Future<Output = ()>) -> Result<(), BusError> {
    let Worker {
        bus,
        subscription,
        handler,
        policy,
        concurrency,
        metrics,
    } = worker;
    let mut consumer = bus.subscribe(&subscription).await?;
    let permits = Arc::new(Semaphore::new(concurrency));
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
        permits.acquire_many(concurrency as u32),
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
                Ok(Err(join)) if join.is_panic() => Err(HandlerError::BadInput(format!(
                    "crashed: {}",
                    crate::failure::panic_text(join.into_panic())
                ))),
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
    // Giving up on a failure report must not report a failure again: that report would meet the
    // same fate (an image nobody knows), and the two would chase each other forever.
    let reports_a_failure = delivery.message.topic == Topic::STAGE_FAILED;
    if let Some(image_id) = image_id.filter(|_| !reports_a_failure) {
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
