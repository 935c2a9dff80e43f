//! The message bus seam: at-least-once delivery with explicit acknowledgement, delayed retry and
//! dead-lettering. Shaped after AMQP so RabbitMQ fits without change: a message is published to a
//! topic (routing key), each subscription is a named durable queue bound to topic patterns, and a
//! delivery is settled exactly once by ack, retry (republish with a delay) or dead-letter.

mod message;
mod pattern;

use std::time::Duration;

use async_trait::async_trait;

pub use message::{Message, headers};
pub use pattern::topic_matches;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The broker or database could not be reached or refused the operation; retrying may help.
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    /// The consumer was closed (shutdown or connection loss it cannot recover from).
    #[error("subscription closed")]
    Closed,
    /// The delivery being settled was handed to another consumer after its lease ran out (the
    /// handler took longer than the lease): that consumer settles it now.
    #[error("lease lost: {0}")]
    LeaseLost(String),
    /// This backend does not offer the operation (test doubles, mostly).
    #[error("not supported by this bus: {0}")]
    Unsupported(&'static str),
}

/// A durable queue and the topic patterns (AMQP syntax: `*` one word, `#` any words) bound to it.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub queue: String,
    pub topics: Vec<String>,
}

impl Subscription {
    pub fn new(queue: &str, topics: &[&str]) -> Self {
        Subscription {
            queue: queue.to_owned(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        }
    }
}

/// A message in dead-letter storage, for inspection and replay.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub queue: String,
    pub message: Message,
    pub attempts: u32,
    pub reason: String,
}

/// Publishes and consumes messages.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes durably: when this returns Ok the message survives a crash of either side.
    async fn publish(&self, message: Message) -> Result<(), BusError>;

    /// Declares the queue and its bindings (idempotently) and starts consuming from it. Messages
    /// published to bound topics after the first declaration are kept until consumed, even while
    /// no consumer runs.
    async fn subscribe(&self, subscription: &Subscription) -> Result<Box<dyn Consumer>, BusError>;

    /// Declares the queue and bindings without consuming, so publishers can start first.
    async fn declare(&self, subscription: &Subscription) -> Result<(), BusError>;

    /// Dead letters of a queue, oldest first.
    async fn dead_letters(&self, queue: &str, limit: u32) -> Result<Vec<DeadLetter>, BusError>;

    /// Moves up to `limit` of a queue's dead letters (oldest first) back into that queue as fresh
    /// deliveries: attempt 1, same id, topic, headers and payload. Returns how many moved.
    /// Never loses one: each is back in the queue before it leaves the dead letters, so a crash
    /// in between can only duplicate it (handlers are idempotent).
    ///
    /// Provided so that test doubles need not implement it; every real backend does.
    async fn replay_dead_letters(&self, queue: &str, limit: u32) -> Result<u32, BusError> {
        let _ = (queue, limit);
        Err(BusError::Unsupported("replaying dead letters"))
    }

    /// Messages in a queue not yet acknowledged (ready, delayed or in flight), dead letters
    /// excluded. For metrics, autoscaling and tests waiting for the pipeline to settle.
    async fn queue_depth(&self, queue: &str) -> Result<u64, BusError>;

    /// Health check for readiness probes.
    async fn ping(&self) -> Result<(), BusError>;
}

/// One consumer of one queue.
#[async_trait]
pub trait Consumer: Send {
    /// Waits for the next delivery. Unsettled deliveries are redelivered if the consumer (or the
    /// whole process) goes away.
    async fn next(&mut self) -> Result<Delivery, BusError>;
}

/// A message handed to a consumer, to be settled once.
pub struct Delivery {
    pub message: Message,
    /// 1 on first delivery, incremented by each [`Delivery::retry`] and by each earlier delivery
    /// that was never settled (its consumer died or its lease ran out): a message that crashes
    /// its worker uses up its attempts like one that fails.
    pub attempt: u32,
    /// True when this may be a redelivery after a crash (the handler must be idempotent anyway).
    pub redelivered: bool,
    settle: Box<dyn Settle>,
}

impl Delivery {
    pub fn new(message: Message, attempt: u32, redelivered: bool, settle: Box<dyn Settle>) -> Self {
        Delivery {
            message,
            attempt,
            redelivered,
            settle,
        }
    }

    /// The side effects are durable: forget the message.
    pub async fn ack(self) -> Result<(), BusError> {
        self.settle.ack().await
    }

    /// Deliver again after `delay`, with `attempt + 1`.
    pub async fn retry(self, delay: Duration) -> Result<(), BusError> {
        self.settle.retry(self.attempt, delay).await
    }

    /// Deliver again after `delay` without spending an attempt: for failures that say nothing
    /// about the message (the database or the store is down), so an outage longer than the retry
    /// budget does not dead-letter good work.
    pub async fn postpone(self, delay: Duration) -> Result<(), BusError> {
        self.settle
            .retry(self.attempt.saturating_sub(1), delay)
            .await
    }

    /// Move to the queue's dead letters with a reason.
    pub async fn dead_letter(self, reason: &str) -> Result<(), BusError> {
        self.settle.dead_letter(self.attempt, reason).await
    }
}

/// How a backend settles one delivery. Implemented by each bus backend.
#[async_trait]
pub trait Settle: Send {
    async fn ack(self: Box<Self>) -> Result<(), BusError>;
    async fn retry(self: Box<Self>, attempt: u32, delay: Duration) -> Result<(), BusError>;
    async fn dead_letter(self: Box<Self>, attempt: u32, reason: &str) -> Result<(), BusError>;
}
