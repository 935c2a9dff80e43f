//! The embedded bus: a durable queue in a local SQLite database (WAL). Publishing inserts one row
//! per bound queue in one transaction; consuming leases a row; ack deletes it, retry makes it
//! visible again later, dead-lettering keeps it with a reason. A lease that is never settled (the
//! process died mid-handling) expires and the row is delivered again; opening the database
//! releases all leases at once, since the embedded bus belongs to exactly one process (tools
//! that work beside it use [`SqliteBus::attach`], which leaves the leases alone).
//!
//! Every delivery counts as an attempt, settled or not: a message whose handling kills the
//! process comes back with a higher attempt each time, so the worker's retry budget ends a crash
//! loop as surely as a string of errors. A settlement names the delivery it settles (the row's
//! delivery count at claim time): once the lease has passed to another consumer, the first one
//! can no longer ack, retry or dead-letter the row under it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use tokio::sync::Notify;

use imgpipe_contract::bus::{
    Bus, BusError, Consumer, DeadLetter, Delivery, Message, Settle, Subscription, topic_matches,
};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS bus_bindings (
    queue TEXT NOT NULL,
    pattern TEXT NOT NULL,
    PRIMARY KEY (queue, pattern)
);
CREATE TABLE IF NOT EXISTS bus_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    content_type TEXT NOT NULL,
    headers TEXT NOT NULL,
    payload BLOB NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1,
    delivered INTEGER NOT NULL DEFAULT 0,
    available_at INTEGER NOT NULL,
    leased_until INTEGER,
    dead_reason TEXT
);
CREATE INDEX IF NOT EXISTS bus_messages_ready ON bus_messages (queue, dead_reason, available_at, seq);
"#;

/// How long a delivery stays invisible to other consumers before it is presumed abandoned, unless
/// [`SqliteBus::with_lease`] sets it from the handler timeout.
const DEFAULT_LEASE: Duration = Duration::from_secs(300);
/// Upper bound on how long a waiting consumer sleeps between looks (delayed retries, expiries).
const POLL: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct SqliteBus {
    pool: SqlitePool,
    wake: Arc<Notify>,
    lease: Duration,
}

impl SqliteBus {
    /// Opens (creating if needed) the queue database at `path`, as the one process that
    /// consumes from it: leases left by a previous run are released, so what it was handling
    /// when it stopped is delivered again at once.
    pub async fn open(path: &Path) -> Result<Self, BusError> {
        let bus = Self::connect(path, true).await?;
        sqlx::query("UPDATE bus_messages SET leased_until = NULL WHERE leased_until IS NOT NULL")
            .execute(&bus.pool)
            .await
            .map_err(unavailable)?;
        Ok(bus)
    }

    /// Opens an existing queue database beside the process that owns it (for operations such
    /// as listing and replaying dead letters) without touching its leases: releasing them would
    /// hand the owner's in-flight messages out a second time. SQLite (WAL, busy timeout) lets
    /// both processes write; the owner's consumers see replayed rows at their next poll.
    pub async fn attach(path: &Path) -> Result<Self, BusError> {
        if !path.exists() {
            return Err(BusError::Unavailable(format!(
                "no embedded queue at {} (wrong data dir, or the pipeline never ran there)",
                path.display()
            )));
        }
        Self::connect(path, false).await
    }

    async fn connect(path: &Path, create: bool) -> Result<Self, BusError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        sqlx::raw_sql(SCHEMA)
            .execute(&pool)
            .await
            .map_err(unavailable)?;
        Ok(SqliteBus {
            pool,
            wake: Arc::new(Notify::new()),
            lease: DEFAULT_LEASE,
        })
    }

    /// Sets how long a delivery may stay unsettled before it goes to another consumer: longer
    /// than the worker's handler timeout (the worker settles a timed-out message itself), or
    /// a slow handler would see its message delivered twice at once.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    async fn claim(&self, queue: &str) -> Result<Option<Delivery>, BusError> {
        let now = now_ms();
        let row = sqlx::query(
            "UPDATE bus_messages SET leased_until = ?1, delivered = delivered + 1 WHERE seq = ( \
                SELECT seq FROM bus_messages WHERE queue = ?2 AND dead_reason IS NULL \
                AND available_at <= ?3 AND (leased_until IS NULL OR leased_until <= ?3) \
                ORDER BY available_at, seq LIMIT 1) \
             RETURNING seq, message_id, topic, content_type, headers, payload, attempt, delivered",
        )
        .bind(now + self.lease.as_millis() as i64)
        .bind(queue)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        let Some(row) = row else { return Ok(None) };
        let headers: String = row.get("headers");
        let message = Message {
            id: row.get("message_id"),
            topic: row.get("topic"),
            content_type: row.get("content_type"),
            headers: serde_json::from_str(&headers).unwrap_or_default(),
            payload: row.get("payload"),
        };
        let attempt: i64 = row.get("attempt");
        let delivered: i64 = row.get("delivered");
        let settle = SqliteSettle {
            bus: self.clone(),
            seq: row.get("seq"),
            delivered,
        };
        // `delivered` runs ahead of `attempt` only by deliveries that were never settled (a
        // crash, a lease that ran out): each of those was an attempt too.
        let redelivered = delivered > attempt;
        let attempt = u32::try_from(attempt.max(delivered).max(1)).unwrap_or(u32::MAX);
        Ok(Some(Delivery::new(
            message,
            attempt,
            redelivered,
            Box::new(settle),
        )))
    }
}

#[async_trait]
impl Bus for SqliteBus {
    async fn publish(&self, message: Message) -> Result<(), BusError> {
        // Read the bindings outside the transaction: one that reads first and writes later cannot
        // wait for SQLite's write lock and fails at once with "database is locked".
        let bindings = sqlx::query("SELECT queue, pattern FROM bus_bindings")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        let mut queues: Vec<String> = bindings
            .iter()
            .filter(|row| topic_matches(row.get("pattern"), &message.topic))
            .map(|row| row.get("queue"))
            .collect();
        queues.dedup();
        let headers = serde_json::to_string(&message.headers).unwrap_or_else(|_| "{}".to_owned());
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        for queue in queues {
            sqlx::query(
                "INSERT INTO bus_messages (queue, message_id, topic, content_type, headers, payload, available_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(queue)
            .bind(&message.id)
            .bind(&message.topic)
            .bind(&message.content_type)
            .bind(&headers)
            .bind(&message.payload)
            .bind(now_ms())
            .execute(&mut *tx)
            .await.map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)?;
        self.wake.notify_waiters();
        Ok(())
    }

    async fn declare(&self, subscription: &Subscription) -> Result<(), BusError> {
        for pattern in &subscription.topics {
            sqlx::query("INSERT OR IGNORE INTO bus_bindings (queue, pattern) VALUES (?, ?)")
                .bind(&subscription.queue)
                .bind(pattern)
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn subscribe(&self, subscription: &Subscription) -> Result<Box<dyn Consumer>, BusError> {
        self.declare(subscription).await?;
        Ok(Box::new(SqliteConsumer {
            bus: self.clone(),
            queue: subscription.queue.clone(),
        }))
    }

    async fn dead_letters(&self, queue: &str, limit: u32) -> Result<Vec<DeadLetter>, BusError> {
        let rows = sqlx::query(
            "SELECT message_id, topic, content_type, headers, payload, attempt, dead_reason FROM bus_messages \
             WHERE queue = ? AND dead_reason IS NOT NULL ORDER BY seq LIMIT ?",
        )
        .bind(queue)
        .bind(limit)
        .fetch_all(&self.pool)
        .await.map_err(unavailable)?;
        Ok(rows
            .iter()
            .map(|row| {
                let headers: String = row.get("headers");
                let attempt: i64 = row.get("attempt");
                DeadLetter {
                    queue: queue.to_owned(),
                    message: Message {
                        id: row.get("message_id"),
                        topic: row.get("topic"),
                        content_type: row.get("content_type"),
                        headers: serde_json::from_str(&headers).unwrap_or_default(),
                        payload: row.get("payload"),
                    },
                    attempts: attempt as u32,
                    reason: row.get("dead_reason"),
                }
            })
            .collect())
    }

    /// One UPDATE turns the oldest dead rows back into ready first attempts, so a replay is
    /// atomic: nothing is both dead and ready, nothing is lost. `delivered` is reset too, so the
    /// replayed delivery does not claim to be a redelivery.
    async fn replay_dead_letters(&self, queue: &str, limit: u32) -> Result<u32, BusError> {
        let done = sqlx::query(
            "UPDATE bus_messages SET dead_reason = NULL, attempt = 1, delivered = 0, \
             available_at = ?1, leased_until = NULL WHERE seq IN ( \
                SELECT seq FROM bus_messages WHERE queue = ?2 AND dead_reason IS NOT NULL \
                ORDER BY seq LIMIT ?3)",
        )
        .bind(now_ms())
        .bind(queue)
        .bind(limit)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        self.wake.notify_waiters();
        Ok(u32::try_from(done.rows_affected()).unwrap_or(u32::MAX))
    }

    async fn queue_depth(&self, queue: &str) -> Result<u64, BusError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM bus_messages WHERE queue = ? AND dead_reason IS NULL",
        )
        .bind(queue)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(n as u64)
    }

    async fn ping(&self) -> Result<(), BusError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

struct SqliteConsumer {
    bus: SqliteBus,
    queue: String,
}

#[async_trait]
impl Consumer for SqliteConsumer {
    async fn next(&mut self) -> Result<Delivery, BusError> {
        loop {
            // Register interest before looking, so a publish between the look and the wait
            // still wakes us.
            let notified = self.bus.wake.notified();
            if let Some(delivery) = self.bus.claim(&self.queue).await? {
                return Ok(delivery);
            }
            let _ = tokio::time::timeout(POLL, notified).await;
        }
    }
}

struct SqliteSettle {
    bus: SqliteBus,
    seq: i64,
    /// The row's delivery count when this delivery claimed it: the lease token.
    delivered: i64,
}

impl SqliteSettle {
    /// A settlement that changed no row: the row was claimed again by another consumer after this
    /// delivery's lease ran out (or is gone). That consumer now owns it.
    fn held(&self, done: sqlx::sqlite::SqliteQueryResult) -> Result<(), BusError> {
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(BusError::LeaseLost(format!(
                "message {} was delivered again after its lease ran out",
                self.seq
            )))
        }
    }
}

#[async_trait]
impl Settle for SqliteSettle {
    async fn ack(self: Box<Self>) -> Result<(), BusError> {
        let done = sqlx::query("DELETE FROM bus_messages WHERE seq = ? AND delivered = ?")
            .bind(self.seq)
            .bind(self.delivered)
            .execute(&self.bus.pool)
            .await
            .map_err(unavailable)?;
        self.held(done)
    }

    async fn retry(self: Box<Self>, attempt: u32, delay: Duration) -> Result<(), BusError> {
        // `delivered = attempt` keeps the two in step, so the next claim reads as a plain retry.
        let done = sqlx::query(
            "UPDATE bus_messages SET attempt = ?, delivered = ?, available_at = ?, leased_until = NULL \
             WHERE seq = ? AND delivered = ?",
        )
        .bind(attempt.saturating_add(1))
        .bind(attempt)
        .bind(now_ms().saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)))
        .bind(self.seq)
        .bind(self.delivered)
        .execute(&self.bus.pool)
        .await
        .map_err(unavailable)?;
        self.held(done)
    }

    async fn dead_letter(self: Box<Self>, attempt: u32, reason: &str) -> Result<(), BusError> {
        // The attempt is stored as counted (crashes included), for the dead-letter listing.
        let done = sqlx::query(
            "UPDATE bus_messages SET dead_reason = ?, attempt = ?, leased_until = NULL \
             WHERE seq = ? AND delivered = ?",
        )
        .bind(reason)
        .bind(attempt)
        .bind(self.seq)
        .bind(self.delivered)
        .execute(&self.bus.pool)
        .await
        .map_err(unavailable)?;
        self.held(done)
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A database error: the queue file is locked, busy or unreadable; worth a retry.
fn unavailable(e: sqlx::Error) -> BusError {
    BusError::Unavailable(e.to_string())
}
