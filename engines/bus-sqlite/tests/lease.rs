//! The embedded queue's lease: a delivery its consumer neither settles nor gives back (a handler
//! stuck past its time) is delivered again once the lease expires, to another consumer.

use std::time::Duration;

use imgpipe_bus_sqlite::SqliteBus;
use imgpipe_contract::bus::{Bus, Message, Subscription};

#[tokio::test]
async fn an_unsettled_delivery_comes_back_after_its_lease() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bus = SqliteBus::open(&dir.path().join("bus.sqlite"))
        .await
        .expect("open")
        .with_lease(Duration::from_millis(300));
    let subscription = Subscription::new("q", &["t.#"]);
    bus.declare(&subscription).await.expect("declare");
    let message = Message::json("t.x", &serde_json::json!({"n": 1})).expect("json");
    bus.publish(message.clone()).await.expect("publish");

    let mut first = bus.subscribe(&subscription).await.expect("subscribe");
    let held = first.next().await.expect("first delivery");
    assert_eq!(held.message.id, message.id);

    let mut second = bus.subscribe(&subscription).await.expect("subscribe again");
    let again = tokio::time::timeout(Duration::from_secs(5), second.next())
        .await
        .expect("redelivered after the lease")
        .expect("bus works");
    assert_eq!(again.message.id, message.id);
    assert_eq!(again.attempt, held.attempt, "a lease expiry is not a retry");
    again.ack().await.expect("ack");
    drop(held);
}
