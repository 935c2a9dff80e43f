//! The resizer stage on the bus: `ObjectCreated` notification in, renditions in the object store
//! and `RenditionsReady` out.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use imgpipe_contract::bus::{Bus, Message, headers};
use imgpipe_contract::event::{
    OriginalKey, RenditionInfo, RenditionsReady, S3Event, S3EventRecord, SourceImage, Topic,
    image_id_from_key,
};
use imgpipe_contract::store::ObjectStore;
use imgpipe_runtime::failure::store_error;
use imgpipe_runtime::worker::{Handler, HandlerError};
use tracing::{debug, info};

use crate::budget::render_in_budget;
use crate::render::{Encoded, Rendered, Renderer};

/// The bus handler for the resizer stage.
pub struct ResizerHandler {
    renderer: Arc<Renderer>,
    store: Arc<dyn ObjectStore>,
    bus: Arc<dyn Bus>,
    renditions_bucket: String,
    max_bytes: u64,
}

impl ResizerHandler {
    /// Renditions go to `renditions_bucket`; originals over `max_bytes` are refused unread.
    pub fn new(
        renderer: Arc<Renderer>,
        store: Arc<dyn ObjectStore>,
        bus: Arc<dyn Bus>,
        renditions_bucket: String,
        max_bytes: u64,
    ) -> Self {
        ResizerHandler {
            renderer,
            store,
            bus,
            renditions_bucket,
            max_bytes,
        }
    }

    async fn process(
        &self,
        message: &Message,
        record: &S3EventRecord,
        key: &str,
        original_key: OriginalKey<'_>,
    ) -> Result<(), HandlerError> {
        let started = Instant::now();
        let image_id = original_key.image_id;
        // Renditions live under the original's tenant too, so storage policies, accounting
        // and per-tenant deletion by prefix cover them.
        let prefix = format!("{}/{image_id}", original_key.tenant);
        let bucket = &record.s3.bucket.name;
        let original = self
            .store
            .get(bucket, key, self.max_bytes)
            .await
            .map_err(|e| store_error(&format!("original {bucket}/{key}"), &e))?;
        let size = record.s3.object.size.unwrap_or(original.len() as u64);

        let rendered = render_in_budget(self.renderer.clone(), original).await?;

        let Rendered {
            format,
            width,
            height,
            thumb,
            preview,
            placeholder,
            camera,
        } = rendered;
        let thumb = self.put(&prefix, "thumb", thumb).await?;
        let preview = self.put(&prefix, "preview", preview).await?;
        let ready = RenditionsReady {
            image_id: image_id.to_owned(),
            source: SourceImage {
                bucket: bucket.clone(),
                key: key.to_owned(),
                etag: record.s3.object.e_tag.clone(),
                size,
                format,
                width,
                height,
                camera,
            },
            thumb,
            preview,
            placeholder,
        };
        let event = Message::json(Topic::RENDITIONS_READY, &ready)
            .map_err(|e| HandlerError::Permanent(format!("cannot serialise event: {e}")))?
            .follows(message)
            .with_header(headers::IMAGE_ID, image_id);
        self.bus
            .publish(event)
            .await
            .map_err(|e| HandlerError::Transient(e.to_string()))?;
        info!(
            image_id,
            width,
            height,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "renditions ready"
        );
        Ok(())
    }

    /// Writes one rendition under `<tenant>/<image_id>/<name>.<extension>` (`prefix` is the
    /// first two). Overwriting is harmless: renders are deterministic, so a replay writes the
    /// same bytes.
    async fn put(
        &self,
        prefix: &str,
        name: &str,
        rendition: Encoded,
    ) -> Result<RenditionInfo, HandlerError> {
        let key = format!("{prefix}/{name}.{}", rendition.extension);
        let size = rendition.bytes.len() as u64;
        self.store
            .put(
                &self.renditions_bucket,
                &key,
                Bytes::from(rendition.bytes),
                rendition.content_type,
            )
            .await
            .map_err(|e| HandlerError::Transient(format!("cannot store {key}: {e}")))?;
        Ok(RenditionInfo {
            bucket: self.renditions_bucket.clone(),
            key,
            width: rendition.width,
            height: rendition.height,
            content_type: rendition.content_type.to_owned(),
            size,
        })
    }
}

#[async_trait]
impl Handler for ResizerHandler {
    fn stage(&self) -> &'static str {
        "resizer"
    }

    async fn handle(&self, message: &Message) -> Result<(), HandlerError> {
        let event: S3Event = serde_json::from_slice(&message.payload)
            .map_err(|e| HandlerError::Permanent(format!("not an S3 event notification: {e}")))?;
        for record in event.records.iter().filter(|r| r.is_object_created()) {
            let key = record.key();
            // Our own renditions are named `<tenant>/<id>/thumb.jpg` too: rendering them would loop
            // forever if the renditions bucket ever sends notifications.
            if record.s3.bucket.name == self.renditions_bucket {
                debug!(key, "skipping a rendition");
                continue;
            }
            let Some(original) = OriginalKey::parse(&key) else {
                debug!(
                    bucket = record.s3.bucket.name,
                    key, "skipping a non-original key"
                );
                continue;
            };
            self.process(message, record, &key, original).await?;
        }
        Ok(())
    }

    /// The object store's notifications may lack the `image-id` header, so the id comes from
    /// the first record's key, falling back to the header.
    fn image_id(&self, message: &Message) -> Option<String> {
        serde_json::from_slice::<S3Event>(&message.payload)
            .ok()
            .and_then(|event| {
                let key = event.records.first()?.key();
                image_id_from_key(&key).map(str::to_owned)
            })
            .or_else(|| message.header(headers::IMAGE_ID).map(str::to_owned))
    }
}
