//! What every bus backend guarantees: topic routing with AMQP patterns, durable queues that keep
//! messages published before a consumer starts, FIFO for one consumer, at-least-once delivery
//! (an unsettled message comes back after a restart), delayed retry with an attempt count,
//! dead letters with a reason that can be replayed, and messages that arrive exactly as sent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Fixture;
use crate::bus::{Bus, Consumer, Delivery, Message, Subscription};

const WAIT: Duration = Duration::from_secs(10);

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

async fn next(consumer: &mut Box<dyn Consumer>) -> Delivery {
    tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("a delivery in time")
        .expect("bus works")
}

async fn nothing_within(consumer: &mut Box<dyn Consumer>, wait: Duration) {
    if let Ok(Ok(d)) = tokio::time::timeout(wait, consumer.next()).await {
        panic!("unexpected delivery {:?}", d.message);
    }
}

fn message(topic: &str, n: u32) -> Message {
    Message::json(topic, &serde_json::json!({ "n": n }))
        .expect("json")
        .with_header("traceparent", "00-abc-def-01")
}

/// Runs every bus property as its own test (see [`crate::testing`]): `$factory` is an async
/// function or closure returning a [`Fixture`] whose `Handle` is `Arc<dyn Bus>`, and whose
/// `open` reaches the same durable bus each time (calling it again after the earlier handles are
/// dropped simulates a process restart).
#[macro_export]
macro_rules! bus_conformance {
    ($factory:expr $(,)?) => {
        $crate::__conformance_tests!(
            bus,
            $factory,
            [
                answers_ping,
                routes_by_topic_pattern_to_every_bound_queue,
                delivers_in_order_exactly_as_sent,
                retry_redelivers_later_with_the_next_attempt,
                dead_letter_keeps_the_reason_and_ends_delivery,
                unsettled_delivery_comes_back_after_a_restart,
                dead_letters_are_listed_oldest_first_with_attempts_and_reason,
                replay_brings_dead_letters_back_oldest_first_within_the_limit,
            ]
        );
    };
}

pub async fn answers_ping<F: Fixture<Handle = Arc<dyn Bus>>>(fixture: &F) {
    let bus = fixture.open().await;
    bus.ping().await.expect("ping");
}

/// Two queues, declared before anything is published: `a` bound to `{topic}.created`, `b` to
/// `{topic}.#`; then `{"n":1}` to `.created`, `{"n":2}` to `.other`, `{"n":3}` to `.created`.
struct Published {
    topic: String,
    a: Subscription,
    b: Subscription,
}

async fn published(bus: &dyn Bus) -> Published {
    let topic = unique("t").replace('-', "_");
    let created = format!("{topic}.created");
    let a = Subscription::new(&unique("qa"), &[&created]);
    let b = Subscription::new(&unique("qb"), &[&format!("{topic}.#")]);
    bus.declare(&a).await.expect("declare a");
    bus.declare(&b).await.expect("declare b");
    bus.publish(message(&created, 1)).await.expect("publish");
    bus.publish(message(&format!("{topic}.other"), 2))
        .await
        .expect("publish");
    bus.publish(message(&created, 3)).await.expect("publish");
    Published { topic, a, b }
}

/// Routing and fan-out with AMQP patterns; declared queues keep what is published before anyone
/// consumes.
pub async fn routes_by_topic_pattern_to_every_bound_queue<F: Fixture<Handle = Arc<dyn Bus>>>(
    fixture: &F,
) {
    let bus = fixture.open().await;
    let Published { topic, a, b } = published(bus.as_ref()).await;
    assert_eq!(bus.queue_depth(&a.queue).await.expect("depth"), 2);
    assert_eq!(bus.queue_depth(&b.queue).await.expect("depth"), 3);

    let mut ca = bus.subscribe(&a).await.expect("sub a");
    for n in [1, 3] {
        let d = next(&mut ca).await;
        assert_eq!(d.message.topic, format!("{topic}.created"));
        assert_eq!(d.message.payload, format!(r#"{{"n":{n}}}"#).as_bytes());
        d.ack().await.expect("ack");
    }
    nothing_within(&mut ca, Duration::from_millis(300)).await;
    let mut cb = bus.subscribe(&b).await.expect("sub b");
    for n in [1, 2, 3] {
        let d = next(&mut cb).await;
        assert_eq!(d.message.payload, format!(r#"{{"n":{n}}}"#).as_bytes());
        d.ack().await.expect("ack");
    }
    nothing_within(&mut cb, Duration::from_millis(300)).await;
    assert_eq!(bus.queue_depth(&a.queue).await.expect("depth"), 0);
    assert_eq!(bus.queue_depth(&b.queue).await.expect("depth"), 0);
}

/// One consumer gets a queue's messages in publication order, with payload, headers and content
/// type as sent.
pub async fn delivers_in_order_exactly_as_sent<F: Fixture<Handle = Arc<dyn Bus>>>(fixture: &F) {
    let bus = fixture.open().await;
    let Published { a, .. } = published(bus.as_ref()).await;
    let mut ca = bus.subscribe(&a).await.expect("sub a");
    let first = next(&mut ca).await;
    assert_eq!(first.attempt, 1);
    assert_eq!(
        first.message.payload, br#"{"n":1}"#,
        "FIFO and exact payload"
    );
    assert_eq!(
        first.message.header("traceparent"),
        Some("00-abc-def-01"),
        "headers survive"
    );
    assert_eq!(first.message.content_type, "application/json");
    first.ack().await.expect("ack");
    let third = next(&mut ca).await;
    assert_eq!(third.message.payload, br#"{"n":3}"#);
    third.ack().await.expect("ack");
}

/// Retry: the message comes back after the delay with the next attempt number and the same id.
pub async fn retry_redelivers_later_with_the_next_attempt<F: Fixture<Handle = Arc<dyn Bus>>>(
    fixture: &F,
) {
    let bus = fixture.open().await;
    let Published { a, .. } = published(bus.as_ref()).await;
    let mut ca = bus.subscribe(&a).await.expect("sub a");
    next(&mut ca).await.ack().await.expect("ack");
    let third = next(&mut ca).await;
    assert_eq!(third.message.payload, br#"{"n":3}"#);

    let third_id = third.message.id.clone();
    let sent_at = Instant::now();
    third
        .retry(Duration::from_millis(300))
        .await
        .expect("retry");
    let again = next(&mut ca).await;
    assert!(
        sent_at.elapsed() >= Duration::from_millis(250),
        "retry delay honoured"
    );
    assert_eq!((again.attempt, again.message.id.clone()), (2, third_id));
    again.ack().await.expect("ack");
}

/// Dead letter: kept with its reason, not delivered again, no longer counted in the queue.
pub async fn dead_letter_keeps_the_reason_and_ends_delivery<F: Fixture<Handle = Arc<dyn Bus>>>(
    fixture: &F,
) {
    let bus = fixture.open().await;
    let Published { a, .. } = published(bus.as_ref()).await;
    let mut ca = bus.subscribe(&a).await.expect("sub a");
    let first = next(&mut ca).await;
    let first_id = first.message.id.clone();
    first.ack().await.expect("ack");
    let third = next(&mut ca).await;
    third.retry(Duration::from_millis(10)).await.expect("retry");
    let again = next(&mut ca).await;
    assert_eq!(
        (again.attempt, &again.message.payload[..]),
        (2, &br#"{"n":3}"#[..])
    );

    again.dead_letter("bad pixels").await.expect("dead letter");
    nothing_within(&mut ca, Duration::from_millis(500)).await;
    let dead = bus.dead_letters(&a.queue, 10).await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, "bad pixels");
    assert_eq!(dead[0].message.payload, br#"{"n":3}"#);
    assert_eq!(dead[0].attempts, 2);
    assert_eq!(bus.queue_depth(&a.queue).await.expect("depth"), 0);
    assert_ne!(dead[0].message.id, first_id);
}

/// At-least-once: a delivery never settled comes back after a restart, and nothing else does.
pub async fn unsettled_delivery_comes_back_after_a_restart<F: Fixture<Handle = Arc<dyn Bus>>>(
    fixture: &F,
) {
    let bus = fixture.open().await;
    let Published { b, .. } = published(bus.as_ref()).await;
    let mut cb = bus.subscribe(&b).await.expect("sub b");
    let unsettled = next(&mut cb).await;
    assert_eq!(unsettled.message.payload, br#"{"n":1}"#);
    let unsettled_id = unsettled.message.id.clone();
    drop(unsettled);
    drop(cb);
    drop(bus);

    let bus = fixture.open().await;
    let mut cb = bus.subscribe(&b).await.expect("resubscribe");
    let mut seen = Vec::new();
    for _ in 0..3 {
        let d = next(&mut cb).await;
        seen.push(d.message.id.clone());
        d.ack().await.expect("ack");
    }
    assert!(
        seen.contains(&unsettled_id),
        "the unsettled message was delivered again"
    );
    nothing_within(&mut cb, Duration::from_millis(300)).await;
    assert_eq!(bus.queue_depth(&b.queue).await.expect("depth"), 0);
}

/// A queue `queue` whose two messages (`sent`, published in this order) have died: the older
/// after a retry (so its dead letter counts two attempts), the newer at once.
struct TwoDead {
    queue: String,
    consumer: Box<dyn Consumer>,
    sent: [Message; 2],
}

async fn two_dead_letters(bus: &dyn Bus) -> TwoDead {
    let topic = format!("{}.replayed", unique("t").replace('-', "_"));
    let subscription = Subscription::new(&unique("qc"), &[&topic]);
    let c = subscription.queue.clone();
    let mut cc = bus.subscribe(&subscription).await.expect("sub c");
    assert_eq!(
        bus.replay_dead_letters(&c, 10).await.expect("replay"),
        0,
        "nothing to replay"
    );
    let sent = [message(&topic, 5), message(&topic, 6)];
    for m in &sent {
        bus.publish(m.clone()).await.expect("publish");
    }
    // The older fails twice, so its dead letter counts attempts beyond the first, and dies
    // first (backends may order dead letters by publication or by death; here both agree).
    let first = next(&mut cc).await;
    assert_eq!(first.message, sent[0]);
    first.retry(Duration::from_millis(10)).await.expect("retry");
    let second = next(&mut cc).await;
    assert_eq!(second.message, sent[1]);
    let retried = next(&mut cc).await;
    assert_eq!((retried.attempt, &retried.message), (2, &sent[0]));
    retried
        .dead_letter("first is bad")
        .await
        .expect("dead letter");
    second
        .dead_letter("second is bad")
        .await
        .expect("dead letter");
    nothing_within(&mut cc, Duration::from_millis(300)).await;
    TwoDead {
        queue: c,
        consumer: cc,
        sent,
    }
}

/// Dead letters are listed with their reason and the attempts made, oldest first.
pub async fn dead_letters_are_listed_oldest_first_with_attempts_and_reason<
    F: Fixture<Handle = Arc<dyn Bus>>,
>(
    fixture: &F,
) {
    let bus = fixture.open().await;
    let TwoDead { queue: c, sent, .. } = two_dead_letters(bus.as_ref()).await;
    let dead = bus.dead_letters(&c, 10).await.expect("dead letters");
    let listed: Vec<(&str, u32, &str)> = dead
        .iter()
        .map(|d| (d.message.id.as_str(), d.attempts, d.reason.as_str()))
        .collect();
    assert_eq!(
        listed,
        vec![
            (sent[0].id.as_str(), 2, "first is bad"),
            (sent[1].id.as_str(), 1, "second is bad"),
        ]
    );
    assert_eq!(dead[0].message, sent[0], "kept as published");
    assert_eq!(dead[1].message, sent[1], "kept as published");
    assert_eq!(
        bus.dead_letters(&c, 1).await.expect("dead letters").len(),
        1,
        "at most limit"
    );
    assert_eq!(bus.queue_depth(&c).await.expect("depth"), 0);
}

/// Dead letters go back into their queue as fresh first deliveries of the same message, oldest
/// first, at most `limit` at a time, and leave the dead letters.
pub async fn replay_brings_dead_letters_back_oldest_first_within_the_limit<
    F: Fixture<Handle = Arc<dyn Bus>>,
>(
    fixture: &F,
) {
    let bus = fixture.open().await;
    let TwoDead {
        queue: c,
        consumer: mut cc,
        sent,
    } = two_dead_letters(bus.as_ref()).await;

    // `limit` bounds a replay; the oldest goes first and arrives as a fresh first delivery of
    // the very message that was published.
    assert_eq!(bus.replay_dead_letters(&c, 1).await.expect("replay"), 1);
    let back = next(&mut cc).await;
    assert_eq!(back.message, sent[0], "same id, topic, headers and payload");
    assert_eq!(
        (back.attempt, back.redelivered),
        (1, false),
        "attempts count afresh"
    );
    let left = bus.dead_letters(&c, 10).await.expect("dead letters");
    assert_eq!(left.len(), 1, "one replayed, one left");
    assert_eq!(left[0].message.id, sent[1].id);
    // Retried after the replay, it counts on from 1.
    back.retry(Duration::from_millis(10)).await.expect("retry");
    let again = next(&mut cc).await;
    assert_eq!((again.attempt, &again.message), (2, &sent[0]));
    again.ack().await.expect("ack");

    assert_eq!(bus.replay_dead_letters(&c, 10).await.expect("replay"), 1);
    let back = next(&mut cc).await;
    assert_eq!((back.attempt, &back.message), (1, &sent[1]));
    assert!(
        bus.dead_letters(&c, 10)
            .await
            .expect("dead letters")
            .is_empty(),
        "replayed letters leave the dead letters"
    );
    back.ack().await.expect("ack");
    nothing_within(&mut cc, Duration::from_millis(300)).await;
    assert_eq!(bus.queue_depth(&c).await.expect("depth"), 0);
}
