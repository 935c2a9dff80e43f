//! The worker loop on the embedded queue (a real SQLite bus): what it does with messages that
//! crash their worker, outlive their timeout, meet an outage or come from a newer producer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use imgpipe_bus_sqlite::SqliteBus;
use imgpipe_contract::bus::{Bus, Message, Subscription, headers};
use imgpipe_contract::config::RetryPolicy;
use imgpipe_contract::event::Topic;
use imgpipe_runtime::failure::run_blocking;
use imgpipe_runtime::metrics::Metrics;
use imgpipe_runtime::worker::{Handler, HandlerError, Worker};
use tokio::sync::oneshot;

const QUEUE: &str = "stage";

/// What the test handler does on each call.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Blocking work that takes this long (like a decode), then success.
    Block(Duration),
    /// `Transient` for the first N calls, then success.
    DownFor(u32),
    Succeed,
}

struct TestHandler {
    behaviour: Behaviour,
    calls: AtomicU32,
    running: Arc<AtomicUsize>,
    most_running: Arc<AtomicUsize>,
}

impl TestHandler {
    fn new(behaviour: Behaviour) -> Arc<Self> {
        Arc::new(TestHandler {
            behaviour,
            calls: AtomicU32::new(0),
            running: Arc::new(AtomicUsize::new(0)),
            most_running: Arc::new(AtomicUsize::new(0)),
        })
    }
}

#[async_trait]
impl Handler for TestHandler {
    fn stage(&self) -> &'static str {
        "test-stage"
    }

    async fn handle(&self, _message: &Message) -> Result<(), HandlerError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        match self.behaviour {
            Behaviour::Block(how_long) => {
                let (running, most) = (self.running.clone(), self.most_running.clone());
                run_blocking(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(how_long);
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }
            Behaviour::DownFor(n) if call <= n => {
                Err(HandlerError::Transient("database unavailable".into()))
            }
            Behaviour::DownFor(_) | Behaviour::Succeed => Ok(()),
        }
    }
}

fn policy(max_attempts: u32, timeout: Duration) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        handler_timeout: timeout,
        transient_patience: Duration::from_secs(60),
    }
}

struct Running {
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

fn start(
    bus: &SqliteBus,
    handler: Arc<TestHandler>,
    policy: RetryPolicy,
    concurrency: usize,
) -> Running {
    let worker = Worker {
        bus: Arc::new(bus.clone()),
        subscription: Subscription::new(QUEUE, &["work.#"]),
        handler,
        policy,
        concurrency,
        metrics: Arc::new(Metrics::new()),
        shutdown_grace: Duration::from_millis(300),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        worker
            .run(async {
                let _ = stopped.await;
            })
            .await
            .expect("worker runs");
    });
    Running { stop, done }
}

async fn fresh_bus(dir: &tempfile::TempDir) -> SqliteBus {
    let bus = SqliteBus::open(&dir.path().join("bus.sqlite"))
        .await
        .expect("open bus");
    for (queue, topic) in [(QUEUE, "work.#"), ("failures", Topic::STAGE_FAILED)] {
        bus.declare(&Subscription::new(queue, &[topic]))
            .await
            .expect("declare");
    }
    bus
}

fn message(image_id: &str) -> Message {
    Message::json("work.item", &serde_json::json!({"image_id": image_id}))
        .expect("json")
        .with_header(headers::IMAGE_ID, image_id)
}

/// Waits until the queue has no live message left.
async fn drained(bus: &SqliteBus, within: Duration) {
    let deadline = Instant::now() + within;
    while bus.queue_depth(QUEUE).await.expect("depth") > 0 {
        assert!(
            Instant::now() < deadline,
            "queue not drained within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_keeps_killing_its_worker_ends_dead_lettered_and_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bus.sqlite");
    {
        let bus = fresh_bus(&dir).await;
        bus.publish(message("poison")).await.expect("publish");
    }
    // Three processes in a row take the message and die holding it.
    for _ in 0..3 {
        let bus = SqliteBus::open(&path).await.expect("reopen");
        let mut consumer = bus
            .subscribe(&Subscription::new(QUEUE, &["work.#"]))
            .await
            .expect("subscribe");
        std::mem::forget(consumer.next().await.expect("delivery"));
    }
    let bus = SqliteBus::open(&path).await.expect("reopen");
    let handler = TestHandler::new(Behaviour::Succeed);
    let worker = start(&bus, handler.clone(), policy(3, Duration::from_secs(5)), 2);
    drained(&bus, Duration::from_secs(10)).await;
    let _ = worker.stop.send(());
    worker.done.await.expect("worker stops");

    assert_eq!(
        handler.calls.load(Ordering::SeqCst),
        0,
        "not tried a fourth time"
    );
    let dead = bus.dead_letters(QUEUE, 10).await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].reason.contains("gave up after 3 attempts"),
        "{}",
        dead[0].reason
    );
    assert!(
        dead[0].reason.contains("never finished"),
        "{}",
        dead[0].reason
    );
    assert_eq!(
        bus.queue_depth("failures").await.expect("depth"),
        1,
        "the image is reported failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_that_outlives_its_timeout_keeps_its_slot_until_it_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bus = fresh_bus(&dir).await;
    for n in 0..3 {
        bus.publish(message(&format!("slow{n}")))
            .await
            .expect("publish");
    }
    // Each blocking job takes 400 ms against a 100 ms timeout; one at a time is the cap.
    let handler = TestHandler::new(Behaviour::Block(Duration::from_millis(400)));
    let worker = start(
        &bus,
        handler.clone(),
        policy(2, Duration::from_millis(100)),
        1,
    );
    drained(&bus, Duration::from_secs(20)).await;
    let _ = worker.stop.send(());
    worker.done.await.expect("worker stops");

    assert_eq!(
        handler.most_running.load(Ordering::SeqCst),
        1,
        "a timed-out decode still running holds its slot"
    );
    assert_eq!(handler.calls.load(Ordering::SeqCst), 6, "two attempts each");
    let dead = bus.dead_letters(QUEUE, 10).await.expect("dead letters");
    assert_eq!(dead.len(), 3);
    assert!(
        dead.iter().all(|d| d.reason.contains("timed out")),
        "{:?}",
        dead[0].reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_the_retry_budget_spends_no_attempts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bus = fresh_bus(&dir).await;
    bus.publish(message("patient")).await.expect("publish");
    // Down for eight calls with a budget of three attempts.
    let handler = TestHandler::new(Behaviour::DownFor(8));
    let worker = start(&bus, handler.clone(), policy(3, Duration::from_secs(5)), 2);
    drained(&bus, Duration::from_secs(20)).await;
    let _ = worker.stop.send(());
    worker.done.await.expect("worker stops");

    assert_eq!(handler.calls.load(Ordering::SeqCst), 9);
    assert!(bus.dead_letters(QUEUE, 10).await.expect("dead").is_empty());
    assert_eq!(bus.queue_depth("failures").await.expect("depth"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_past_its_patience_counts_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bus = fresh_bus(&dir).await;
    bus.publish(message("never")).await.expect("publish");
    let handler = TestHandler::new(Behaviour::DownFor(u32::MAX));
    let mut policy = policy(2, Duration::from_secs(5));
    policy.transient_patience = Duration::from_millis(300);
    let worker = start(&bus, handler.clone(), policy, 1);
    drained(&bus, Duration::from_secs(20)).await;
    let _ = worker.stop.send(());
    worker.done.await.expect("worker stops");

    let dead = bus.dead_letters(QUEUE, 10).await.expect("dead letters");
    assert_eq!(dead.len(), 1, "a message failing forever still ends");
    assert!(dead[0].reason.contains("database unavailable"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stage_refuses_an_unknown_schema_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bus = fresh_bus(&dir).await;
    bus.publish(message("future").with_header(headers::SCHEMA_VERSION, "99"))
        .await
        .expect("publish");
    let handler = TestHandler::new(Behaviour::Succeed);
    let worker = start(&bus, handler.clone(), policy(3, Duration::from_secs(5)), 1);
    drained(&bus, Duration::from_secs(10)).await;
    let _ = worker.stop.send(());
    worker.done.await.expect("worker stops");

    assert_eq!(handler.calls.load(Ordering::SeqCst), 0);
    let dead = bus.dead_letters(QUEUE, 10).await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 1, "dead-lettered at once");
    assert!(
        dead[0]
            .reason
            .contains("unknown schema version 99 (the test-stage reads version 1)"),
        "{}",
        dead[0].reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_hands_back_unfinished_work_as_the_same_attempt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bus = fresh_bus(&dir).await;
    bus.publish(message("long")).await.expect("publish");
    // Takes 3 s; the stop grants 300 ms.
    let handler = TestHandler::new(Behaviour::Block(Duration::from_secs(3)));
    let worker = start(&bus, handler.clone(), policy(3, Duration::from_secs(10)), 1);
    while handler.calls.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stopping = Instant::now();
    let _ = worker.stop.send(());
    worker.done.await.expect("worker stops");
    assert!(
        stopping.elapsed() < Duration::from_secs(2),
        "a stop is bounded"
    );

    let mut consumer = bus
        .subscribe(&Subscription::new(QUEUE, &["work.#"]))
        .await
        .expect("subscribe");
    let back = tokio::time::timeout(Duration::from_secs(2), consumer.next())
        .await
        .expect("handed back at once")
        .expect("bus works");
    assert_eq!(back.attempt, 1, "a stop spends no attempt");
    assert!(bus.dead_letters(QUEUE, 10).await.expect("dead").is_empty());
}
