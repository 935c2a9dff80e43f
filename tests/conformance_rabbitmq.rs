//! The bus conformance suite against the real RabbitMQ on 127.0.0.1:5672 (one test per property,
//! `rabbitmq::…`), plus what only a networked broker can do: drop the connection under a running
//! publisher and consumer. Each test gets a fresh vhost (made and removed with `rabbitmqctl`, so
//! it needs root or the rabbitmq user), which keeps parallel runs apart and cleans up every queue
//! and exchange. Without a running broker every test fails, saying so; none is skipped.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::engines::Vhost;
use imgpipe_bus_rabbitmq::RabbitBus;
use imgpipe_contract::bus::{Bus, Consumer, Delivery, Message, Subscription};
use imgpipe_contract::config::{BusConfig, RetryConfig};
use imgpipe_contract::testing::Fixture;

const WAIT: Duration = Duration::from_secs(15);

async fn connect(config: &BusConfig) -> RabbitBus {
    RabbitBus::connect(config, RetryConfig::default().max_attempts)
        .await
        .expect("connect to RabbitMQ")
}

async fn next(consumer: &mut Box<dyn Consumer>) -> Delivery {
    tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("a delivery in time")
        .expect("bus works")
}

fn message(topic: &str, n: u32) -> Message {
    Message::json(topic, &serde_json::json!({ "n": n })).expect("json")
}

/// A vhost of its own; each `open` is a new connection, which stands in for a restarted process:
/// the old one closes when the suite drops the bus and its consumers, and the broker requeues
/// what it left unsettled. The vhost goes when the fixture is dropped.
struct RabbitVhost {
    vhost: Vhost,
}

impl Fixture for RabbitVhost {
    type Handle = Arc<dyn Bus>;

    async fn open(&self) -> Arc<dyn Bus> {
        Arc::new(connect(&self.vhost.config()).await)
    }
}

async fn new_vhost() -> RabbitVhost {
    RabbitVhost {
        vhost: Vhost::create(),
    }
}

mod rabbitmq {
    imgpipe_contract::bus_conformance!(super::new_vhost);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_bus_survives_a_dropped_connection() {
    let vhost = Vhost::create();
    let bus = connect(&vhost.config()).await;
    let subscription = Subscription::new("work", &["job.*"]);
    bus.declare(&subscription).await.expect("declare");
    bus.publish(message("job.first", 1)).await.expect("publish");
    let mut consumer = bus.subscribe(&subscription).await.expect("subscribe");
    let held = next(&mut consumer).await;
    assert_eq!(held.message.payload, br#"{"n":1}"#);
    // The consumer is waiting for more when the connection goes, as a worker would be.
    let waiting = tokio::spawn(async move {
        let delivery = next(&mut consumer).await;
        (consumer, delivery)
    });

    vhost.close_connections();

    // Publishing reconnects; the delivery from the dead connection cannot be settled (the
    // broker delivers it again instead).
    bus.publish(message("job.second", 2))
        .await
        .expect("publish after the connection dropped");
    assert!(
        held.ack().await.is_err(),
        "settling on a dead channel is an error"
    );

    // The consumer resubscribes by itself and gets both, nothing lost.
    let (mut consumer, delivery) = waiting.await.expect("consumer task");
    let mut seen = vec![delivery.message.payload.clone()];
    delivery.ack().await.expect("ack after resubscribing");
    let delivery = next(&mut consumer).await;
    seen.push(delivery.message.payload.clone());
    delivery.ack().await.expect("ack after resubscribing");
    seen.sort();
    assert_eq!(seen, vec![br#"{"n":1}"#.to_vec(), br#"{"n":2}"#.to_vec()]);
    if let Ok(Ok(extra)) = tokio::time::timeout(Duration::from_millis(500), consumer.next()).await {
        panic!("unexpected delivery {:?}", extra.message);
    }
    assert_eq!(bus.queue_depth("work").await.expect("depth"), 0);
    bus.ping().await.expect("ping after reconnecting");
}

/// A queue argument as `rabbitmqctl list_queues --formatter json` shows it: `[name, type, value]`.
fn argument<'a>(queue: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    queue["arguments"]
        .as_array()?
        .iter()
        .find(|arg| arg[0] == name)
        .map(|arg| &arg[2])
}

/// RabbitMQ 4 drops a quorum-queue message after 20 deliveries unless told otherwise; the
/// topology must set the limit (the retry policy's attempts) and the dead-letter target
/// explicitly, and retry buckets must lead back to the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_topology_never_drops_messages() {
    let vhost = Vhost::create();
    let bus = connect(&vhost.config()).await;
    bus.declare(&Subscription::new("work", &["job.*"]))
        .await
        .expect("declare");
    let out = Command::new("rabbitmqctl")
        .args([
            "list_queues",
            "-p",
            &vhost.name,
            "name",
            "type",
            "arguments",
        ])
        .args(["--formatter", "json", "--quiet"])
        .output()
        .expect("rabbitmqctl runs");
    let queues: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).expect("rabbitmqctl lists queues as JSON");
    let queue = |name: &str| {
        queues
            .iter()
            .find(|q| q["name"] == name)
            .unwrap_or_else(|| panic!("queue {name} declared"))
    };

    let main = queue("test.work");
    assert_eq!(main["type"], "quorum");
    assert_eq!(
        argument(main, "x-delivery-limit"),
        Some(&RetryConfig::default().max_attempts.into())
    );
    assert_eq!(argument(main, "x-dead-letter-exchange"), Some(&"".into()));
    assert_eq!(
        argument(main, "x-dead-letter-routing-key"),
        Some(&"test.work.dead".into())
    );
    assert_eq!(queue("test.work.dead")["type"], "classic");

    let buckets: Vec<&serde_json::Value> = queues
        .iter()
        .filter(|q| {
            q["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("test.work.retry."))
        })
        .collect();
    assert_eq!(buckets.len(), 16, "one retry queue per delay bucket");
    for bucket in buckets {
        let name = bucket["name"].as_str().unwrap_or_default();
        let ttl: u64 = name
            .rsplit('.')
            .next()
            .and_then(|ms| ms.parse().ok())
            .expect("ms");
        assert_eq!(
            argument(bucket, "x-message-ttl"),
            Some(&ttl.into()),
            "{name}"
        );
        assert_eq!(argument(bucket, "x-dead-letter-exchange"), Some(&"".into()));
        assert_eq!(
            argument(bucket, "x-dead-letter-routing-key"),
            Some(&"test.work".into()),
            "{name} leads back to the queue"
        );
    }
    assert_eq!(queues.len(), 18, "nothing else declared");
}

/// A message whose consumer dies holding it (the broker requeues it when the connection goes) comes
/// back with the next attempt number, so the worker's budget ends a crash loop; past the limit the
/// broker itself dead-letters it into the dead queue rather than delivering it forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_counts_a_crash_as_an_attempt() {
    const MAX_ATTEMPTS: u32 = 2;
    let vhost = Vhost::create();
    let subscription = Subscription::new("work", &["job.*"]);
    {
        let bus = RabbitBus::connect(&vhost.config(), MAX_ATTEMPTS)
            .await
            .expect("connect");
        bus.declare(&subscription).await.expect("declare");
        bus.publish(message("job.poison", 7))
            .await
            .expect("publish");
    }
    for expected in 1..=MAX_ATTEMPTS + 1 {
        let bus = RabbitBus::connect(&vhost.config(), MAX_ATTEMPTS)
            .await
            .expect("connect");
        let mut consumer = bus.subscribe(&subscription).await.expect("subscribe");
        let held = next(&mut consumer).await;
        assert_eq!(held.attempt, expected, "each crash counted");
        // The process dies holding it: no settlement, the connection just goes.
        vhost.close_connections();
        std::mem::forget(held);
        std::mem::forget(consumer);
    }
    let bus = RabbitBus::connect(&vhost.config(), MAX_ATTEMPTS)
        .await
        .expect("connect");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let dead = bus.dead_letters("work", 10).await.expect("dead letters");
        if let Some(letter) = dead.first() {
            assert_eq!(letter.message.payload, br#"{"n":7}"#);
            assert!(
                letter.reason.contains("delivery_limit"),
                "{}",
                letter.reason
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "dead-lettered by the broker"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(bus.queue_depth("work").await.expect("depth"), 0);
}

/// Beyond the suite: a message retried twice through the delay buckets (which the broker
/// dead-letters back, adding its own headers) and then dead-lettered is still the message that
/// was published, and reading dead letters leaves them in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_retries_and_dead_letters_keep_the_message() {
    let vhost = Vhost::create();
    let bus = connect(&vhost.config()).await;
    let subscription = Subscription::new("work", &["job.*"]);
    let mut consumer = bus.subscribe(&subscription).await.expect("subscribe");
    let sent = message("job.resize", 7).with_header("traceparent", "00-abc-def-01");
    bus.publish(sent.clone()).await.expect("publish");

    for attempt in 1..=2 {
        let delivery = next(&mut consumer).await;
        assert_eq!(delivery.attempt, attempt);
        assert_eq!(
            delivery.message, sent,
            "attempt {attempt} carries the message as sent"
        );
        delivery
            .retry(Duration::from_millis(10))
            .await
            .expect("retry");
    }
    let last = next(&mut consumer).await;
    assert_eq!((last.attempt, &last.message), (3, &sent));
    last.dead_letter("bad pixels").await.expect("dead letter");

    for _ in 0..2 {
        let dead = bus.dead_letters("work", 10).await.expect("dead letters");
        assert_eq!(dead.len(), 1, "reading dead letters does not consume them");
        assert_eq!(dead[0].message, sent);
        assert_eq!(
            (dead[0].attempts, dead[0].reason.as_str()),
            (3, "bad pixels")
        );
    }
    assert_eq!(bus.queue_depth("work").await.expect("depth"), 0);
    assert!(
        bus.dead_letters("never-declared", 10)
            .await
            .expect("none")
            .is_empty()
    );
    assert_eq!(bus.queue_depth("never-declared").await.expect("depth"), 0);
}

/// Polls `queue_depth` until it reads `expected` (messages move between the broker's counts and
/// this process's asynchronously).
async fn depth_reaches(bus: &RabbitBus, queue: &str, expected: u64) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let depth = bus.queue_depth(queue).await.expect("depth");
        if depth == expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "depth of {queue} stuck at {depth}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A consumer prefetches; dropping it (while the bus lives on) must hand back what it held, and
/// the depth counts prefetched messages throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_dropped_consumer_returns_what_it_prefetched() {
    let vhost = Vhost::create();
    let bus = connect(&vhost.config()).await;
    let subscription = Subscription::new("work", &["job.*"]);
    bus.declare(&subscription).await.expect("declare");
    for n in 1..=3 {
        bus.publish(message("job.x", n)).await.expect("publish");
    }
    let mut consumer = bus.subscribe(&subscription).await.expect("subscribe");
    let first = next(&mut consumer).await;
    depth_reaches(&bus, "work", 3).await;
    first.ack().await.expect("ack");
    depth_reaches(&bus, "work", 2).await;
    drop(consumer);
    depth_reaches(&bus, "work", 2).await;

    let mut consumer = bus.subscribe(&subscription).await.expect("subscribe again");
    let mut payloads = Vec::new();
    for _ in 0..2 {
        let delivery = next(&mut consumer).await;
        payloads.push(delivery.message.payload.clone());
        delivery.ack().await.expect("ack");
    }
    assert_eq!(
        payloads,
        vec![br#"{"n":2}"#.to_vec(), br#"{"n":3}"#.to_vec()]
    );
    depth_reaches(&bus, "work", 0).await;
}
