use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use imgpipe_contract::bus::Message;
use imgpipe_contract::db::{Applied, DbError, Decision, MetadataDb};
use imgpipe_contract::document::{ImageDocument, StageTimes};
use imgpipe_runtime::worker::{Handler, HandlerError};
use tracing::{debug, info};

use crate::api::{FeedSignal, with_links};
use crate::change::DocChange;
use crate::reduce::{Outcome, reduce};

/// Folds every pipeline message into its image's document.
pub struct MetadataHandler {
    store: Arc<dyn MetadataDb>,
    originals_bucket: String,
    feed: Option<FeedSignal>,
}

impl MetadataHandler {
    pub fn new(store: Arc<dyn MetadataDb>, originals_bucket: String) -> Self {
        MetadataHandler {
            store,
            originals_bucket,
            feed: None,
        }
    }

    /// Wakes this process's event streams after each write.
    pub fn waking(mut self, feed: FeedSignal) -> Self {
        self.feed = Some(feed);
        self
    }

    async fn apply(&self, change: &DocChange) -> Result<(), HandlerError> {
        let unavailable = |e: DbError| match e {
            DbError::Unavailable(_) => HandlerError::Transient(e.to_string()),
            _ => HandlerError::Permanent(e.to_string()),
        };
        // An upload event for a deleted image (a reprocess, a late notification) must not bring
        // its document back.
        if matches!(change, DocChange::Uploaded(_))
            && self
                .store
                .was_deleted(change.image_id())
                .await
                .map_err(unavailable)?
        {
            info!(
                image_id = change.image_id(),
                "event for a deleted image ignored"
            );
            return Ok(());
        }
        let fold = |current: Option<ImageDocument>| match reduce(current.as_ref(), change) {
            Outcome::Write(mut doc) => {
                stamp(&mut doc, change, Utc::now());
                // Stored with its serving paths (they follow from the id and the original's
                // eTag), so a list is served as stored.
                Decision::write(with_links(*doc))
            }
            Outcome::Unchanged => Decision::Unchanged,
            Outcome::NotYet => Decision::NotYet,
            Outcome::Ignored(why) => {
                info!(image_id = change.image_id(), %why, "change ignored");
                Decision::Unchanged
            }
        };
        let applied = self
            .store
            .update(change.image_id(), &fold)
            .await
            .map_err(unavailable)?;
        // Bad input rather than transient: the database is fine, and an event for an image that
        // never gets a document (a forged or stray event) must use up its attempts and end, not
        // be postponed as if something were down.
        if applied == Applied::NotYet {
            // A stage's result for an image deleted while it worked: nothing to wait for.
            if self
                .store
                .was_deleted(change.image_id())
                .await
                .map_err(unavailable)?
            {
                info!(
                    image_id = change.image_id(),
                    "result for a deleted image ignored"
                );
                return Ok(());
            }
            return Err(HandlerError::BadInput(format!(
                "image {} has no document yet; its upload event has not been applied",
                change.image_id()
            )));
        }
        if applied == Applied::Written
            && let Some(feed) = &self.feed
        {
            feed.bump();
        }
        debug!(image_id = change.image_id(), ?applied, "applied");
        Ok(())
    }
}

/// Records when a stage's result was stored. Only on a write: a replay writes nothing and so
/// keeps the first time.
fn stamp(doc: &mut ImageDocument, change: &DocChange, now: DateTime<Utc>) {
    let stages = &mut doc.stages;
    match change {
        DocChange::Uploaded(_) => *stages = StageTimes::default(),
        DocChange::Renditions(_) => stages.resized = Some(now),
        DocChange::Tags(_) => stages.tagged = Some(now),
        DocChange::Failed(_) => stages.failed = Some(now),
        DocChange::Retrying(..) => {}
    }
}

#[async_trait]
impl Handler for MetadataHandler {
    fn stage(&self) -> &'static str {
        "metadata-store"
    }

    async fn handle(&self, message: &Message) -> Result<(), HandlerError> {
        let changes = DocChange::from_message(message, &self.originals_bucket).map_err(|e| {
            HandlerError::Permanent(format!("unreadable {} message: {e}", message.topic))
        })?;
        for change in &changes {
            self.apply(change).await?;
        }
        Ok(())
    }

    fn image_id(&self, message: &Message) -> Option<String> {
        DocChange::from_message(message, &self.originals_bucket)
            .ok()
            .and_then(|changes| changes.first().map(|c| c.image_id().to_owned()))
    }
}
