//! The consumer runtime every stage shares: bounded concurrency, each message handled in its own
//! task (a panic fails that message, not the worker), retry with exponential backoff for bad
//! input, postponement without spending attempts while a dependency is down ([`crate::outage`]),
//! dead-lettering after the last attempt (or at once for a message that can never be understood,
//! or one whose deliveries kept killing the worker), and a [`StageFailed`] event so the image's
//! document records why.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info_span, warn};

use imgpipe_contract::bus::{Bus, BusError, Delivery, Message, Subscription, headers};
use imgpipe_contract::config::RetryPolicy;
use imgpipe_contract::event::{SCHEMA_VERSION, StageFailed, StageRetrying, Topic};

use crate::metrics::{Metrics, Outcome};
use crate::outage::Outage;

/// Pause before subscribing again after a consumer failed.
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(1);
/// How long handing unfinished messages back on shutdown may take.
const RELEASE_TIME: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Might work later (store, database or bus unavailable): postponed with backoff without
    /// spending an attempt, up to `retry.transient_patience_secs`.
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
    /// On shutdown: how long in-flight messages may take to finish before they are handed back
    /// to the queue without spending an attempt.
    pub shutdown_grace: Duration,
}

impl Worker {
    /// Consumes the subscription until `shutdown` resolves, then lets in-flight messages finish
    /// for up to `shutdown_grace` and hands back the rest (they come back as the same attempt).
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
        shutdown_grace,
    } = worker;
    let mut consumer = bus.subscribe(&subscription).await?;
    let permits = Arc::new(Semaphore::new(concurrency));
    let outage = Arc::new(Outage::new(&policy));
    let in_flight = TaskTracker::new();
    let release = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        // Something we depend on is down: take no new work until the pause is over.
        if let Some(pause) = outage.pause() {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
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
        let context = Settling {
            bus: bus.clone(),
            handler: handler.clone(),
            policy: policy.clone(),
            metrics: metrics.clone(),
            outage: outage.clone(),
            release: release.clone(),
        };
        let settled = in_flight.track_future(context.settle(delivery));
        tokio::spawn(async move {
            // A handler that ran out of time may still be running (a blocking decode cannot be
            // stopped): its slot stays taken until it really ends, so the concurrency cap holds.
            if let Some(still_running) = settled.await {
                let _ = still_running.await;
            }
            drop(permit);
        });
    }
    in_flight.close();
    if tokio::time::timeout(shutdown_grace, in_flight.wait())
        .await
        .is_err()
    {
        // Out of time: give what is left back to the queue now, as the same attempt, rather
        // than let the process exit and have it counted as a crash.
        warn!(queue = %subscription.queue, left = in_flight.len(), "handing back unfinished messages");
        release.cancel();
        let _ = tokio::time::timeout(RELEASE_TIME, in_flight.wait()).await;
    }
    Ok(())
}

/// Everything settling one delivery needs.
struct Settling {
    bus: Arc<dyn Bus>,
    handler: Arc<dyn Handler>,
    policy: RetryPolicy,
    metrics: Arc<Metrics>,
    outage: Arc<Outage>,
    /// Cancelled when shutdown runs out of grace.
    release: CancellationToken,
}

impl Settling {
    /// Handles and settles one delivery. Returns the handler's task if it is still running after
    /// its timeout (the delivery is settled by then).
    async fn settle(self, delivery: Delivery) -> Option<JoinHandle<Result<(), HandlerError>>> {
        let message = delivery.message.clone();
        let stage = self.handler.stage();
        let image_id = self.handler.image_id(&message);
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
            self.metrics.started(stage);
            let (outcome, still_running) = self.run(&message, delivery.attempt).await;
            let Some(outcome) = outcome else {
                // Shutdown ran out of grace: back to the queue as the same attempt.
                if let Err(e) = delivery.postpone(Duration::ZERO).await {
                    warn!(error = %e, "could not hand back an unfinished message");
                }
                return still_running;
            };
            // A transient failure within the message's patience is postponed; past it, it
            // counts like bad input.
            let (outcome, postpone) = match outcome {
                Err(HandlerError::Transient(reason)) => match self.outage.failed(&message.id) {
                    Some(delay) => (Err(HandlerError::Transient(reason)), Some(delay)),
                    None => (Err(HandlerError::BadInput(reason)), None),
                },
                other => (other, None),
            };
            let policy = &self.policy;
            let (settled, result) = match (outcome, postpone) {
                (Ok(()), _) => {
                    self.outage.settled(&message.id, true);
                    (Outcome::Ok, delivery.ack().await)
                }
                (Err(e), Some(delay)) => {
                    warn!(reason = %e, ?delay, "unavailable, postponed without spending an attempt");
                    (Outcome::Retry, delivery.postpone(delay).await)
                }
                (Err(HandlerError::Transient(reason) | HandlerError::BadInput(reason)), None)
                    if delivery.attempt < policy.max_attempts =>
                {
                    self.outage.settled(&message.id, false);
                    let delay = policy.delay(delivery.attempt);
                    warn!(%reason, ?delay, "failed, will retry");
                    let (failed, attempt) = (&delivery.message, delivery.attempt);
                    announce_retry(self.bus.as_ref(), stage, image_id.as_deref(), failed, attempt, &reason)
                        .await;
                    (Outcome::Retry, delivery.retry(delay).await)
                }
                (Err(e), None) => {
                    self.outage.settled(&message.id, false);
                    let reason = e.to_string();
                    warn!(%reason, "giving up on message");
                    (
                        Outcome::Dead,
                        give_up(self.bus.as_ref(), stage, image_id, delivery, &reason).await,
                    )
                }
            };
            self.metrics.finished(stage, settled, started.elapsed());
            if let Err(e) = result {
                // The delivery stays unsettled and comes back after its lease (or is already
                // another consumer's): nothing is lost.
                warn!(error = %e, "could not settle delivery");
            }
            still_running
        }
        .instrument(span)
        .await
    }

    /// Runs the handler under its timeout, after the checks that need no handler: a message
    /// from a newer producer, and one that has used up its attempts without ever being settled
    /// (each of those deliveries killed its worker or outlived its lease: a crash loop).
    /// No result when shutdown released the message first.
    async fn run(
        &self,
        message: &Message,
        attempt: u32,
    ) -> (
        Option<Result<(), HandlerError>>,
        Option<JoinHandle<Result<(), HandlerError>>>,
    ) {
        let policy = &self.policy;
        if let Err(e) = check_schema(message, self.handler.stage()) {
            return (Some(Err(e)), None);
        }
        if attempt > policy.max_attempts {
            return (
                Some(Err(HandlerError::Permanent(format!(
                    "gave up after {} attempts: the last ones never finished (the worker \
                     crashed, was killed or ran out of time while handling this message)",
                    attempt - 1
                )))),
                None,
            );
        }
        let (handler, message) = (self.handler.clone(), message.clone());
        let mut task = tokio::spawn(async move { handler.handle(&message).await });
        let finished = tokio::select! {
            finished = tokio::time::timeout(policy.handler_timeout, &mut task) => finished,
            _ = self.release.cancelled() => return (None, Some(task)),
        };
        match finished {
            Ok(Ok(result)) => (Some(result), None),
            Ok(Err(join)) if join.is_panic() => (
                Some(Err(HandlerError::BadInput(format!(
                    "crashed: {}",
                    crate::failure::panic_text(join.into_panic())
                )))),
                None,
            ),
            Ok(Err(join)) => (Some(Err(HandlerError::Transient(join.to_string()))), None),
            // Input that takes this long is as suspect as input that fails: it spends an
            // attempt, or a hostile file would be retried forever.
            Err(_) => (
                Some(Err(HandlerError::BadInput(format!(
                    "timed out after {:?}",
                    policy.handler_timeout
                )))),
                Some(task),
            ),
        }
    }
}

/// Every stage refuses a message of a schema version it does not know (a newer producer): it
/// cannot be understood, however often it is tried.
fn check_schema(message: &Message, stage: &str) -> Result<(), HandlerError> {
    match message.header(headers::SCHEMA_VERSION) {
        Some(version) if version != SCHEMA_VERSION => Err(HandlerError::Permanent(format!(
            "unknown schema version {version} (the {stage} reads version {SCHEMA_VERSION})"
        ))),
        _ => Ok(()),
    }
}

/// Tells the people waiting on an image that a stage failed and will try again (the page shows
/// it on the card). Best effort: the retry itself does not depend on it. Not for the metadata
/// store's own retries, nor for failure and retry reports, which would only report themselves.
async fn announce_retry(
    bus: &dyn Bus,
    stage: &str,
    image_id: Option<&str>,
    failed: &Message,
    attempt: u32,
    reason: &str,
) {
    let topic = failed.topic.as_str();
    let Some(image_id) = image_id else { return };
    if stage == "metadata-store" || topic == Topic::STAGE_FAILED || topic == Topic::STAGE_RETRYING {
        return;
    }
    let retrying = StageRetrying {
        image_id: image_id.to_owned(),
        stage: stage.to_owned(),
        reason: reason.to_owned(),
        attempt,
    };
    let Ok(event) = Message::json(Topic::STAGE_RETRYING, &retrying) else {
        return;
    };
    let event = event
        .follows(failed)
        .with_header(headers::IMAGE_ID, image_id);
    if let Err(e) = bus.publish(event).await {
        warn!(error = %e, "cannot announce the retry");
    }
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
