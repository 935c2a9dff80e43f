//! `imgpipe dlq`: inspect and replay dead letters, the messages a stage gave up on (an image that
//! cannot be decoded, or a transient failure past `retry.max_attempts`), on whichever bus the
//! config names. Replaying puts a dead letter back into its queue as a fresh first attempt, e.g.
//! once the bug or outage that killed it is fixed; handlers are idempotent, so a replay of a
//! message that still fails just dead-letters it again.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use imgpipe_contract::bus::{Bus, DeadLetter, headers};
use imgpipe_contract::config::Config;
use imgpipe_contract::event::decode_key;
use serde::Serialize;
use serde_json::Value;

use crate::roles::pipeline_subscriptions;

/// Default `--limit`: enough to see what is wrong without flooding a terminal.
const DEFAULT_LIMIT: u32 = 100;

/// `imgpipe dlq list|replay`.
#[derive(Debug, Args)]
pub struct DlqCommand {
    /// Directory of the embedded queue: the `--data-dir` the pipeline runs with.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// One line per dead letter: queue, message id, topic, attempts, reason, image id, S3 key.
    List {
        /// Only this queue (default: the pipeline's queues, resizer, recognizer, metadata-store).
        #[arg(long)]
        queue: Option<String>,
        /// At most this many per queue, oldest first.
        #[arg(long, default_value_t = DEFAULT_LIMIT)]
        limit: u32,
        /// One JSON object per line instead.
        #[arg(long)]
        json: bool,
    },
    /// Moves a queue's dead letters (oldest first) back into it as fresh first attempts.
    Replay {
        /// The queue whose dead letters to replay, e.g. resizer.
        #[arg(long)]
        queue: String,
        /// At most this many.
        #[arg(long, default_value_t = DEFAULT_LIMIT)]
        limit: u32,
    },
}

impl DlqCommand {
    /// Runs against the bus `config` names (with `--data-dir` applied), writing to `out`.
    pub async fn run(self, mut config: Config, out: &mut impl Write) -> anyhow::Result<()> {
        if let Some(dir) = self.data_dir {
            config.data_dir = dir;
        }
        // Checked before the bus is opened: a typo is reported at once, whatever the bus.
        match &self.action {
            Action::List {
                queue: Some(queue), ..
            }
            | Action::Replay { queue, .. } => known_queue(queue)?,
            Action::List { queue: None, .. } => {}
        }
        let bus = open_bus(&config).await?;
        match self.action {
            Action::List { queue, limit, json } => {
                let queues = queue.map_or_else(pipeline_queues, |q| vec![q]);
                let letters = list(bus.as_ref(), &queues, limit).await?;
                for letter in &letters {
                    let summary = Summary::of(letter);
                    if json {
                        writeln!(out, "{}", serde_json::to_string(&summary)?)?;
                    } else {
                        writeln!(out, "{}", summary.line())?;
                    }
                }
                // Said on stderr, so stdout stays the listing (empty) for scripts.
                if letters.is_empty() {
                    eprintln!("no dead letters in {}", queues.join(", "));
                }
            }
            Action::Replay { queue, limit } => {
                let moved = replay(bus.as_ref(), &queue, limit).await?;
                writeln!(out, "replayed {moved} dead letter(s) of {queue}")?;
            }
        }
        Ok(())
    }
}

/// The queues the pipeline's stages consume.
pub fn pipeline_queues() -> Vec<String> {
    pipeline_subscriptions()
        .into_iter()
        .map(|s| s.queue)
        .collect()
}

/// `queue` is one of the pipeline's queues; otherwise an error naming them (a queue nobody
/// consumes has no dead letters, so listing it would print nothing, misleadingly).
pub fn known_queue(queue: &str) -> anyhow::Result<()> {
    let known = pipeline_queues();
    if known.iter().any(|q| q == queue) {
        Ok(())
    } else {
        anyhow::bail!(
            "unknown queue {queue:?}: the queues are {}",
            known.join(", ")
        )
    }
}

/// Opens the configured bus beside a pipeline that may be running: the embedded queue is
/// attached to, not taken over, so the running process keeps its leases (and must have created
/// the queue, in the same data dir).
pub async fn open_bus(config: &Config) -> anyhow::Result<Arc<dyn Bus>> {
    crate::backends::attach_bus(config)
        .await
        .context("cannot open the bus")
}

/// Up to `limit` dead letters of each of `queues`, queue by queue, oldest first.
pub async fn list(bus: &dyn Bus, queues: &[String], limit: u32) -> anyhow::Result<Vec<DeadLetter>> {
    let mut letters = Vec::new();
    for queue in queues {
        letters.extend(
            bus.dead_letters(queue, limit)
                .await
                .with_context(|| format!("cannot read the dead letters of {queue}"))?,
        );
    }
    Ok(letters)
}

/// Moves up to `limit` dead letters of `queue` back into it; returns how many moved.
pub async fn replay(bus: &dyn Bus, queue: &str, limit: u32) -> anyhow::Result<u32> {
    bus.replay_dead_letters(queue, limit)
        .await
        .with_context(|| format!("cannot replay the dead letters of {queue}"))
}

/// What `dlq list` shows of one dead letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub queue: String,
    pub message_id: String,
    pub topic: String,
    pub attempts: u32,
    pub reason: String,
    pub image_id: Option<String>,
    /// The S3 key of the image's original, when the payload names one.
    pub key: Option<String>,
}

impl Summary {
    pub fn of(letter: &DeadLetter) -> Self {
        let message = &letter.message;
        // Payloads are read leniently: a dead letter may be exactly the message that does not
        // parse, and listing it must still work.
        let payload: Value = serde_json::from_slice(&message.payload).unwrap_or(Value::Null);
        let image_id = message
            .header(headers::IMAGE_ID)
            .map(str::to_owned)
            .or_else(|| payload["image_id"].as_str().map(str::to_owned));
        // A storage notification (URL-encoded key), or a stage event naming its source.
        let key = payload["Records"][0]["s3"]["object"]["key"]
            .as_str()
            .map(decode_key)
            .or_else(|| payload["source"]["key"].as_str().map(str::to_owned));
        Summary {
            queue: letter.queue.clone(),
            message_id: message.id.clone(),
            topic: message.topic.clone(),
            attempts: letter.attempts,
            reason: letter.reason.clone(),
            image_id,
            key,
        }
    }

    /// Tab-separated fields, `-` for a missing one. Tabs and line breaks in the free-text fields
    /// become spaces, so each dead letter stays one line of a fixed number of fields.
    pub fn line(&self) -> String {
        let attempts = self.attempts.to_string();
        [
            self.queue.as_str(),
            &self.message_id,
            &self.topic,
            &attempts,
            &self.reason,
            self.image_id.as_deref().unwrap_or("-"),
            self.key.as_deref().unwrap_or("-"),
        ]
        .iter()
        .map(|field| field.replace(['\t', '\n', '\r'], " "))
        .collect::<Vec<_>>()
        .join("\t")
    }
}

#[cfg(test)]
mod tests {
    use imgpipe_contract::bus::Message;

    use super::*;

    fn letter(message: Message) -> DeadLetter {
        DeadLetter {
            queue: "resizer".to_owned(),
            message,
            attempts: 3,
            reason: "not an image:\tunknown format".to_owned(),
        }
    }

    #[test]
    fn summary_names_the_image_and_its_key() {
        let event =
            serde_json::json!({"Records": [{"s3": {"object": {"key": "0190/my+cat%2B1.jpg"}}}]});
        let message = Message::json("storage.object.created", &event)
            .map(|m| m.with_header(headers::IMAGE_ID, "0190"))
            .unwrap_or_else(|e| panic!("{e}"));
        let summary = Summary::of(&letter(message.clone()));
        assert_eq!(summary.image_id.as_deref(), Some("0190"));
        assert_eq!(summary.key.as_deref(), Some("0190/my cat+1.jpg"));
        assert_eq!(
            summary.line(),
            format!(
                "resizer\t{}\tstorage.object.created\t3\tnot an image: unknown format\t0190\t0190/my cat+1.jpg",
                message.id
            )
        );
    }

    #[test]
    fn summary_of_an_unreadable_payload_still_lists_it() {
        let mut message = Message::json("image.tags.ready", &serde_json::json!({}))
            .unwrap_or_else(|e| panic!("{e}"));
        message.payload = b"\xff not json".to_vec();
        let summary = Summary::of(&letter(message));
        assert_eq!((&summary.image_id, &summary.key), (&None, &None));
        assert!(summary.line().ends_with("\t-\t-"));
    }

    #[test]
    fn an_unknown_queue_is_an_error_naming_the_known_ones() {
        for queue in pipeline_queues() {
            known_queue(&queue).unwrap_or_else(|e| panic!("{e}"));
        }
        for bogus in ["bogus", "", "Resizer", "resizer "] {
            let message = known_queue(bogus).expect_err(bogus).to_string();
            assert!(message.contains(&format!("{bogus:?}")), "{message}");
            assert!(
                message.contains("resizer, recognizer, metadata-store"),
                "{message}"
            );
        }
    }

    #[test]
    fn pipeline_queues_are_the_stages() {
        assert_eq!(
            pipeline_queues(),
            ["resizer", "recognizer", "metadata-store"]
        );
    }
}
