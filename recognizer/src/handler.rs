//! The recognizer stage on the bus: `RenditionsReady` in, `TagsReady` out.

use std::sync::Arc;

use async_trait::async_trait;
use imgpipe_contract::bus::{Bus, Message, headers};
use imgpipe_contract::event::{RenditionsReady, TagsReady, Topic};
use imgpipe_contract::store::ObjectStore;
use imgpipe_runtime::failure::{run_blocking, store_error};
use imgpipe_runtime::worker::{Handler, HandlerError};

use crate::classifier::{Classifier, Recognition, Recognized};
use crate::error::RecognizerError;
use crate::ocr::{Ocr, TextLine};
use crate::scores;

/// Default cap on the preview's size. Previews are ~1280 px JPEGs of a few hundred KiB; anything
/// near this is not a preview and is refused before its body is read.
pub const DEFAULT_MAX_PREVIEW_BYTES: u64 = 32 * 1024 * 1024;

/// Handles `RenditionsReady`: fetches the preview rendition (never the original), decodes it
/// once, classifies it and (with OCR on) reads its text, off the async runtime, and publishes
/// `TagsReady`.
///
/// Idempotent: the same preview and model give the same tags (scores are rounded), so a
/// redelivery republishes an identical `TagsReady`, which the metadata store applies once.
pub struct RecognizerHandler {
    classifier: Arc<Classifier>,
    ocr: Option<Arc<Ocr>>,
    store: Arc<dyn ObjectStore>,
    bus: Arc<dyn Bus>,
    top_k: usize,
    max_preview_bytes: u64,
}

impl RecognizerHandler {
    /// A handler publishing the `top_k` best tags per image.
    pub fn new(
        classifier: Arc<Classifier>,
        store: Arc<dyn ObjectStore>,
        bus: Arc<dyn Bus>,
        top_k: usize,
    ) -> Self {
        RecognizerHandler {
            classifier,
            ocr: None,
            store,
            bus,
            top_k,
            max_preview_bytes: DEFAULT_MAX_PREVIEW_BYTES,
        }
    }

    /// Also reads the text in each preview with `ocr` (when `Some`).
    pub fn with_ocr(mut self, ocr: Option<Arc<Ocr>>) -> Self {
        self.ocr = ocr;
        self
    }

    /// Overrides [`DEFAULT_MAX_PREVIEW_BYTES`].
    pub fn with_max_preview_bytes(mut self, max_bytes: u64) -> Self {
        self.max_preview_bytes = max_bytes;
        self
    }
}

#[async_trait]
impl Handler for RecognizerHandler {
    fn stage(&self) -> &'static str {
        "recognizer"
    }

    async fn handle(&self, message: &Message) -> Result<(), HandlerError> {
        let event: RenditionsReady = serde_json::from_slice(&message.payload).map_err(|e| {
            HandlerError::Permanent(format!("unparseable RenditionsReady payload: {e}"))
        })?;
        let preview = &event.preview;
        let what = format!("preview {}/{}", preview.bucket, preview.key);
        let bytes = self
            .store
            .get(&preview.bucket, &preview.key, self.max_preview_bytes)
            .await
            .map_err(|e| store_error(&what, &e))?;

        let (classifier, ocr, top_k) = (self.classifier.clone(), self.ocr.clone(), self.top_k);
        let image_id = event.image_id.clone();
        let started = std::time::Instant::now();
        // Decoding, preprocessing and OCR are CPU-bound for milliseconds, and waiting for the
        // batch blocks: keep them off the async workers. The batch runs on the classifier's own
        // thread, with the images of the other messages in flight.
        let preview_size = (preview.width, preview.height);
        let (recognition, text) = run_blocking(move || {
            // Decoded once, at reduced scale: as small as the model input, or the OCR
            // detector's input when OCR is on, allow.
            let min_long = if ocr.is_some() { Ocr::MAX_SIDE } else { 0 };
            let Recognized { image, recognition } =
                classifier.recognize_bytes(&bytes, min_long, top_k)?;
            let mut text = read_text(ocr.as_deref(), &image, &image_id);
            to_preview_pixels(&mut text, (image.width(), image.height()), preview_size);
            Ok::<_, RecognizerError>((recognition, text))
        })
        .await?
        .map_err(|e| classify_error(&what, &e))?;
        let Recognition { tags, categories } = recognition;
        tracing::info!(
            image_id = %event.image_id,
            top = tags.first().map(|t| t.label.as_str()).unwrap_or(""),
            score = tags.first().map(|t| t.score).unwrap_or(0.0),
            category = categories.first().map(|c| c.name.as_str()).unwrap_or(""),
            text_lines = text.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "tagged image"
        );

        let ready = TagsReady {
            image_id: event.image_id.clone(),
            source_etag: event.source.etag.clone(),
            tags,
            categories,
            text,
            model: self.classifier.model(),
        };
        let out = Message::json(Topic::TAGS_READY, &ready)
            .map_err(|e| HandlerError::Permanent(format!("cannot encode TagsReady: {e}")))?
            .follows(message)
            .with_header(headers::IMAGE_ID, event.image_id);
        self.bus
            .publish(out)
            .await
            .map_err(|e| HandlerError::Transient(e.to_string()))
    }
}

/// The text in the picture, or none: the tags are worth publishing even when OCR fails (its
/// models run separately from the classifier), so a failure is logged, not retried.
fn read_text(ocr: Option<&Ocr>, image: &image::DynamicImage, image_id: &str) -> Vec<TextLine> {
    let Some(ocr) = ocr else {
        return Vec::new();
    };
    match ocr.read(image) {
        // Rounded like tag scores, so a redelivery publishes the very same text.
        Ok(mut lines) => {
            for line in &mut lines {
                line.score = scores::round(line.score);
            }
            lines
        }
        Err(error) => {
            tracing::warn!(%image_id, %error, "OCR failed; publishing the tags without text");
            Vec::new()
        }
    }
}

/// Boxes found on the image as decoded (possibly at reduced scale) mapped onto the preview, whose
/// pixels the document's boxes are in.
fn to_preview_pixels(lines: &mut [TextLine], decoded: (u32, u32), preview: (u32, u32)) {
    if decoded == preview || decoded.0 == 0 || decoded.1 == 0 {
        return;
    }
    let (sx, sy) = (
        f64::from(preview.0) / f64::from(decoded.0),
        f64::from(preview.1) / f64::from(decoded.1),
    );
    let scale = |v: u32, s: f64| (f64::from(v) * s).round() as u32;
    for line in lines {
        let b = &mut line.bbox;
        (b.x, b.y, b.width, b.height) = (
            scale(b.x, sx),
            scale(b.y, sy),
            scale(b.width, sx),
            scale(b.height, sy),
        );
    }
}

/// A preview that does not decode is bad input; a broken runtime might be fixed by a restart
/// with a corrected setup. Both are retried, and dead-lettered after the last attempt.
fn classify_error(what: &str, error: &RecognizerError) -> HandlerError {
    let reason = format!("{what}: {error}");
    if error.is_bad_input() {
        HandlerError::BadInput(reason)
    } else {
        HandlerError::Transient(reason)
    }
}
