//! The embedded queue's lease: a delivery its consumer neither settles nor gives back (a handler
//! stuck past its time, a process that died) is delivered again, and that counts as an attempt,
//! so a message that kills its worker every time still ends dead-lettered after the retry budget.

use std::time::Duration;

use imgpipe_bus_sqlite::SqliteBus;
use imgpipe_contract::bus::{Bus, BusError, Message, Subscription};

async fn one_message(bus: &SqliteBus) -> (Subscription, Message) {
    let subscription = Subscription::new("q", &["t.#"]);
    bus.declare(&subscription).await.expect("declare");
    let message = Message::json("t.x", &serde_json::json!({"n": 1})).expect("json");
    bus.publish(message.clone()).await.expect("publish");
    (subscription, message)
}

#[tokio::test]
async fn an_unsettled_delivery_comes_back_after_its_lease_as_the_next_attempt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bus = SqliteBus::open(&dir.path().join("bus.sqlite"))
        .await
        .expect("open")
        .with_lease(Duration::from_millis(300));
    let (subscription, message) = one_message(&bus).await;

    let mut first = bus.subscribe(&subscription).await.expect("subscribe");
    let held = first.next().await.expect("first delivery");
    assert_eq!(held.message.id, message.id);
    assert_eq!(held.attempt, 1);

    let mut second = bus.subscribe(&subscription).await.expect("subscribe again");
    let again = tokio::time::timeout(Duration::from_secs(5), second.next())
        .await
        .expect("redelivered after the lease")
        .expect("bus works");
    assert_eq!(again.message.id, message.id);
    assert_eq!(
        again.attempt, 2,
        "a delivery that was never settled was an attempt"
    );
    assert!(again.redelivered);

    // The first consumer lost its lease: it can no longer settle the message under the second.
    match held.ack().await {
        Err(BusError::LeaseLost(_)) => {}
        other => panic!("a settle after the lease passed on must fail, got {other:?}"),
    }
    assert_eq!(
        bus.queue_depth("q").await.expect("depth"),
        1,
        "still owned by the second"
    );
    again.ack().await.expect("the lease holder settles");
    assert_eq!(bus.queue_depth("q").await.expect("depth"), 0);
}

#[tokio::test]
async fn a_message_that_kills_its_process_uses_up_its_attempts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bus.sqlite");
    let subscription = {
        let bus = SqliteBus::open(&path).await.expect("open");
        one_message(&bus).await.0
    };
    // Each "process" takes the message and dies holding it; the next one opens the queue.
    for expected in 1..=4u32 {
        let bus = SqliteBus::open(&path).await.expect("reopen");
        let mut consumer = bus.subscribe(&subscription).await.expect("subscribe");
        let delivery = tokio::time::timeout(Duration::from_secs(5), consumer.next())
            .await
            .expect("delivered")
            .expect("bus works");
        assert_eq!(delivery.attempt, expected, "crash {expected} counted");
        std::mem::forget(delivery);
    }
    // Retries and postponements keep counting from there.
    let bus = SqliteBus::open(&path).await.expect("reopen");
    let mut consumer = bus.subscribe(&subscription).await.expect("subscribe");
    let delivery = consumer.next().await.expect("delivered");
    assert_eq!(delivery.attempt, 5);
    delivery.postpone(Duration::ZERO).await.expect("postpone");
    let delivery = consumer.next().await.expect("delivered");
    assert_eq!(delivery.attempt, 5, "a postponement spends no attempt");
    assert!(!delivery.redelivered);
    delivery.retry(Duration::ZERO).await.expect("retry");
    let delivery = consumer.next().await.expect("delivered");
    assert_eq!(delivery.attempt, 6);
    delivery.dead_letter("poison").await.expect("dead-letter");
    let dead = bus.dead_letters("q", 10).await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 6);
}
