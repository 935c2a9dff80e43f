//! What every bus backend guarantees: topic routing with AMQP patterns, durable queues that keep
//! messages published before a consumer starts, FIFO for one consumer, at-least-once delivery
//! (an unsettled message comes back after a restart), delayed retry with an attempt count,
//! dead letters with a reason that can be replayed, and messages that arrive exactly as sent.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use imgpipe_contract::bus::{Bus, Consumer, Delivery, Message, Subscription};

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

/// `open` gives a handle on the same durable bus each time; calling it again simulates a
/// process restart (everything unsettled by the old handle must come back).
pub async fn suite<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Bus>>,
{
    let bus = open().await;
    bus.ping().await.expect("ping");
    let topic = unique("t").replace('-', "_");
    let (a, b) = (unique("qa"), unique("qb"));

    // Routing and fan-out; declared queues keep what is published before anyone consumes.
    bus.declare(&Subscription::new(&a, &[&format!("{topic}.created")]))
        .await
        .expect("declare a");
    bus.declare(&Subscription::new(&b, &[&format!("{topic}.#")]))
        .await
        .expect("declare b");
    bus.publish(message(&format!("{topic}.created"), 1))
        .await
        .expect("publish");
    bus.publish(message(&format!("{topic}.other"), 2))
        .await
        .expect("publish");
    bus.publish(message(&format!("{topic}.created"), 3))
        .await
        .expect("publish");
    assert_eq!(bus.queue_depth(&a).await.expect("depth"), 2);
    assert_eq!(bus.queue_depth(&b).await.expect("depth"), 3);

    let mut ca = bus
        .subscribe(&Subscription::new(&a, &[&format!("{topic}.created")]))
        .await
        .expect("sub a");
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
    let first_id = first.message.id.clone();
    first.ack().await.expect("ack");
    let third = next(&mut ca).await;
    assert_eq!(third.message.payload, br#"{"n":3}"#);

    // Retry: comes back later with the next attempt number and the same id.
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

    // Dead letter: kept with its reason, not delivered again.
    again.dead_letter("bad pixels").await.expect("dead letter");
    nothing_within(&mut ca, Duration::from_millis(500)).await;
    let dead = bus.dead_letters(&a, 10).await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, "bad pixels");
    assert_eq!(dead[0].message.payload, br#"{"n":3}"#);
    assert_eq!(bus.queue_depth(&a).await.expect("depth"), 0);
    assert_ne!(dead[0].message.id, first_id);

    // At-least-once: a delivery never settled comes back after a restart.
    let mut cb = bus
        .subscribe(&Subscription::new(&b, &[&format!("{topic}.#")]))
        .await
        .expect("sub b");
    let unsettled = next(&mut cb).await;
    assert_eq!(unsettled.message.payload, br#"{"n":1}"#);
    let unsettled_id = unsettled.message.id.clone();
    drop(unsettled);
    drop(cb);
    drop(ca);
    drop(bus);
    let bus = open().await;
    let mut cb = bus
        .subscribe(&Subscription::new(&b, &[&format!("{topic}.#")]))
        .await
        .expect("resubscribe");
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
    assert_eq!(bus.queue_depth(&b).await.expect("depth"), 0);

    dead_letters_replay(bus.as_ref(), &topic).await;
}

/// Dead letters go back into their queue as fresh first deliveries of the same message, oldest
/// first, at most `limit` at a time, and leave the dead letters.
async fn dead_letters_replay(bus: &dyn Bus, topic: &str) {
    let topic = format!("{topic}.replayed");
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

    // Listed with reason and attempts, oldest first.
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
