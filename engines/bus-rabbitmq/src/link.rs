//! The bus handle's one AMQP connection, re-established on demand.
//!
//! Nothing runs in the background: whoever next needs the connection (a publish, a consumer
//! waiting for deliveries) notices it dropped and reconnects, with backoff, within its own
//! patience. On reconnect the exchange and every subscription this handle declared are declared
//! again, so a broker that lost its definitions gets them back before the first publish.
//! When the last handle (bus, consumer or unsettled delivery) goes, the connection is closed and
//! the broker requeues whatever was left unacknowledged.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use tracing::warn;

use super::topology::{Names, declare_exchange, declare_subscription, short};
use super::unavailable;
use imgpipe_contract::bus::{BusError, Subscription};

/// How long one connection attempt may take (TCP connect plus the AMQP handshake).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const LONGEST_PAUSE: Duration = Duration::from_secs(5);
/// How long to wait for the broker to confirm a publish. It may hold confirms back for a while
/// (a resource alarm blocks publishers); past this the caller hears about it and can retry.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// A connected connection and the confirm-mode channel everything is published on.
#[derive(Clone)]
pub(super) struct Live {
    pub(super) connection: Arc<Connection>,
    pub(super) publisher: Channel,
}

impl Live {
    fn usable(&self) -> bool {
        self.connection.status().connected() && self.publisher.status().connected()
    }

    /// A fresh channel, for work whose failure must not close the publisher's channel.
    pub(super) async fn channel(&self) -> Result<Channel, BusError> {
        self.connection
            .create_channel()
            .await
            .map_err(|e| unavailable("opening a channel", e))
    }
}

pub(super) struct Link {
    url: String,
    names: Names,
    live: tokio::sync::Mutex<Option<Live>>,
    /// Subscriptions declared through this handle, declared again after a reconnect.
    declared: Mutex<BTreeMap<String, Subscription>>,
    /// Per queue: deliveries this process holds unsettled (see `RabbitBus::queue_depth`).
    in_flight: Mutex<HashMap<String, Arc<AtomicU64>>>,
}

impl Link {
    pub(super) fn new(url: &str, prefix: &str, max_attempts: u32) -> Self {
        Link {
            url: url.to_owned(),
            names: Names::new(prefix, max_attempts),
            live: tokio::sync::Mutex::new(None),
            declared: Mutex::new(BTreeMap::new()),
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn names(&self) -> &Names {
        &self.names
    }

    pub(super) fn remember(&self, subscription: &Subscription) {
        self.declared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(subscription.queue.clone(), subscription.clone());
    }

    pub(super) fn in_flight(&self, queue: &str) -> Arc<AtomicU64> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(queue.to_owned())
            .or_default()
            .clone()
    }

    pub(super) fn in_flight_count(&self, queue: &str) -> u64 {
        self.in_flight(queue).load(Ordering::SeqCst)
    }

    /// The live connection, reconnecting if it dropped. Connection attempts are retried with
    /// backoff for up to `patience` (at least one attempt is made).
    pub(super) async fn live(&self, patience: Duration) -> Result<Live, BusError> {
        let deadline = Instant::now() + patience;
        let mut pause = FIRST_PAUSE;
        loop {
            match self.attempt().await {
                Ok(live) => return Ok(live),
                Err(e) if Instant::now() + pause > deadline => return Err(e),
                Err(e) => {
                    warn!(error = %e, retry_in = ?pause, "RabbitMQ unreachable");
                    // Sleep without the lock, so a ping need not wait for our backoff.
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(LONGEST_PAUSE);
                }
            }
        }
    }

    /// Runs `op` on the live connection; if it fails because the connection (or the publisher's
    /// channel) dropped meanwhile, reconnects and runs it again, for up to `patience`. Other
    /// failures (a refused declaration, a nack) would only repeat, so they are returned at once.
    pub(super) async fn retrying<T, F, Fut>(
        &self,
        patience: Duration,
        mut op: F,
    ) -> Result<T, BusError>
    where
        F: FnMut(Live) -> Fut,
        Fut: Future<Output = Result<T, BusError>>,
    {
        let deadline = Instant::now() + patience;
        let mut pause = FIRST_PAUSE;
        loop {
            let live = self
                .live(deadline.saturating_duration_since(Instant::now()))
                .await?;
            match op(live.clone()).await {
                Ok(value) => return Ok(value),
                Err(e) if live.usable() || Instant::now() + pause > deadline => return Err(e),
                Err(e) => {
                    warn!(error = %e, "RabbitMQ connection lost, trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(LONGEST_PAUSE);
                }
            }
        }
    }

    /// One look at the connection: reuse it, replace a closed publisher channel, or reconnect.
    async fn attempt(&self) -> Result<Live, BusError> {
        let mut guard = self.live.lock().await;
        if let Some(live) = guard.as_mut()
            && live.connection.status().connected()
        {
            if !live.publisher.status().connected() {
                live.publisher = self.publisher(&live.connection).await?;
            }
            return Ok(live.clone());
        }
        let live = self.connect().await?;
        // Replacing the old (dead) connection drops it, which releases its resources.
        *guard = Some(live.clone());
        Ok(live)
    }

    async fn connect(&self) -> Result<Live, BusError> {
        let properties = ConnectionProperties::default().with_connection_name(LongString::from(
            format!("imgpipe ({})", self.names.exchange()),
        ));
        let url = redact(&self.url);
        let connection =
            tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(&self.url, properties))
                .await
                .map_err(|_| {
                    BusError::Unavailable(format!(
                        "connecting to {url} timed out after {CONNECT_TIMEOUT:?}"
                    ))
                })?
                .map_err(|e| unavailable(&format!("connecting to {url}"), e))?;
        let connection = Arc::new(connection);
        let publisher = self.publisher(&connection).await?;
        let live = Live {
            connection,
            publisher,
        };
        let subscriptions: Vec<Subscription> = self
            .declared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let channel = live.channel().await?;
        for subscription in &subscriptions {
            declare_subscription(&channel, &self.names, subscription).await?;
        }
        close_quietly(&channel).await;
        Ok(live)
    }

    /// Opens the channel everything is published on, in confirm mode, and (re)declares the
    /// exchange, which a channel closed by a publish to a deleted exchange then finds again.
    async fn publisher(&self, connection: &Connection) -> Result<Channel, BusError> {
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| unavailable("opening the publishing channel", e))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| unavailable("enabling publisher confirms", e))?;
        declare_exchange(&channel, &self.names).await?;
        Ok(channel)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // lapin closes the connection by itself only after every channel handle is gone and each
        // channel has closed in the background; close it now, so the broker requeues what this
        // handle left unacknowledged at once.
        if let Some(live) = self.live.get_mut().take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                // Close the channel first: left to lapin, it would be closed in the background
                // and race the connection close, which lapin reports as a connection error.
                close_quietly(&live.publisher).await;
                if live.connection.status().connected() {
                    let _ = live.connection.close(200, ShortString::from("OK")).await;
                }
            });
        }
    }
}

/// Publishes on a confirm-mode channel and waits for the broker's verdict: Ok only once the
/// broker has taken responsibility for the message (for a quorum queue: written on a majority).
/// With `mandatory`, a message no queue takes is an error instead of vanishing.
pub(super) async fn publish_confirmed(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    mandatory: bool,
    payload: &[u8],
    properties: BasicProperties,
) -> Result<(), BusError> {
    let publish = async {
        channel
            .basic_publish(
                short(exchange)?,
                short(routing_key)?,
                BasicPublishOptions {
                    mandatory,
                    ..BasicPublishOptions::default()
                },
                payload,
                properties,
            )
            .await
            .map_err(|e| unavailable(&format!("publishing to {routing_key}"), e))?
            .await
            .map_err(|e| unavailable(&format!("confirming a publish to {routing_key}"), e))
    };
    let confirmation = tokio::time::timeout(CONFIRM_TIMEOUT, publish)
        .await
        .map_err(|_| {
            BusError::Unavailable(format!(
                "RabbitMQ did not confirm a publish to {routing_key} within {CONFIRM_TIMEOUT:?}"
            ))
        })??;
    match confirmation {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => {
            Err(BusError::Unavailable(format!(
                "RabbitMQ returned the message sent to {routing_key}: {}",
                returned.reply_text
            )))
        }
        Confirmation::Nack(None) => Err(BusError::Unavailable(format!(
            "RabbitMQ refused (nacked) the message sent to {routing_key}"
        ))),
        Confirmation::NotRequested => Err(BusError::Unavailable(
            "publisher confirms are not enabled on this channel".to_owned(),
        )),
    }
}

/// Closes a channel we are done with; the broker requeues anything it left unacknowledged.
pub(super) async fn close_quietly(channel: &Channel) {
    if channel.status().connected() {
        let _ = channel.close(200, ShortString::from("OK")).await;
    }
}

/// The URL without its password, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_stay_out_of_errors() {
        assert_eq!(
            redact("amqp://guest:secret@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(redact("amqp://127.0.0.1"), "amqp://127.0.0.1");
    }
}
