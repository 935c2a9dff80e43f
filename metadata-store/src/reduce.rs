//! How each change folds into a document. Pure and idempotent: applying the same change twice
//! yields nothing to write the second time, and a stale change (an older upload of the same
//! key, per the S3 sequencer) is ignored.
//!
//! A stage's result or failure applies only to the version of the original it was made from
//! (its source eTag): one made from bytes the key held before is ignored, one made from bytes
//! whose upload is not applied yet waits for it. Changes that name no eTag (older producers)
//! apply to whatever original is current. A failure never undoes a success: once done, an image
//! stays done until its original changes.

use std::fmt;

use imgpipe_contract::document::{
    ImageDocument, Original, Rendition, Renditions, Retrying, StageError, Status,
};
use imgpipe_contract::event::{LEGACY_TENANT, OriginalKey};

use crate::change::{DocChange, Upload};

/// Earlier eTags a document remembers: plenty for the overwrites of one key during the minutes
/// a late result can take, and bounded so a key rewritten in a loop cannot grow its document.
const EARLIER_ETAGS: usize = 8;

/// What applying a change to the current document gives.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Write this document.
    Write(Box<ImageDocument>),
    /// Already reflected (or stale): nothing to do.
    Unchanged,
    /// The change needs a document (or an upload) that is not applied yet (events raced): try
    /// again later.
    NotYet,
    /// The change is outdated by what the document holds: nothing to write, and worth a log
    /// line, since a stage did work nobody will see.
    Ignored(Ignored),
}

/// Why a change was ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    /// A result or failure made from bytes the key held before its current original.
    EarlierOriginal { made_from: String, current: String },
    /// A failure reported for an image already done (a redelivered message that failed late):
    /// the renditions and tags of its original are there.
    FailureAfterSuccess,
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ignored::EarlierOriginal { made_from, current } => write!(
                f,
                "made from an earlier original (eTag {made_from}); the current one is {current}"
            ),
            Ignored::FailureAfterSuccess => {
                f.write_str("a failure reported after the image was done")
            }
        }
    }
}

pub fn reduce(current: Option<&ImageDocument>, change: &DocChange) -> Outcome {
    let next = match (current, change) {
        (None, DocChange::Uploaded(upload)) => uploaded(upload, Vec::new()),
        (Some(doc), DocChange::Uploaded(upload)) => {
            let same = doc.original.etag == upload.etag;
            let stale = match (&doc.original.sequencer, &upload.sequencer) {
                (Some(old), Some(new)) => !newer(new, old),
                _ => false,
            };
            if same {
                return Outcome::Unchanged;
            }
            if stale {
                // The stages process this older upload too: remember its eTag so that what they
                // make of it is recognised as outdated rather than awaited.
                return match &upload.etag {
                    Some(etag) if !doc.original.earlier_etags.contains(etag) => {
                        let mut doc = doc.clone();
                        remember(&mut doc.original.earlier_etags, etag);
                        Outcome::Write(Box::new(doc))
                    }
                    _ => Outcome::Unchanged,
                };
            }
            // The key was overwritten with new bytes: start over from the new original.
            let mut earlier = doc.original.earlier_etags.clone();
            if let Some(old) = &doc.original.etag {
                remember(&mut earlier, old);
            }
            if let Some(new) = &upload.etag {
                earlier.retain(|e| e != new);
            }
            // New bytes under the same id: the editor's tags describe the item, and stay.
            let mut next = uploaded(upload, earlier);
            next.editor_tags = doc.editor_tags.clone();
            next
        }
        (None, _) => return Outcome::NotYet,
        (Some(doc), result) => {
            if let Err(outcome) = made_from_current(doc, result) {
                return outcome;
            }
            if matches!(result, DocChange::Failed(_)) && doc.status == Status::Done {
                return Outcome::Ignored(Ignored::FailureAfterSuccess);
            }
            // A retry of a message whose image is done (a duplicate delivery) changes nothing
            // anyone waits for. A failed image's retry is news: its dead letter was replayed.
            if matches!(result, DocChange::Retrying(..)) && doc.status == Status::Done {
                return Outcome::Unchanged;
            }
            apply_result(doc, result)
        }
    };
    match current {
        Some(doc) if served_alike(doc, &next) => Outcome::Unchanged,
        _ => Outcome::Write(Box::new(next)),
    }
}

/// Whether a stage's result or failure concerns the document's current original: `Err` with
/// what to answer when it does not.
fn made_from_current(doc: &ImageDocument, change: &DocChange) -> Result<(), Outcome> {
    let (Some(made_from), Some(current)) = (change.source_etag(), doc.original.etag.as_deref())
    else {
        return Ok(());
    };
    let (made_from, current) = (unquoted(made_from), unquoted(current));
    if made_from == current {
        return Ok(());
    }
    if doc
        .original
        .earlier_etags
        .iter()
        .any(|e| unquoted(e) == made_from)
    {
        return Err(Outcome::Ignored(Ignored::EarlierOriginal {
            made_from: made_from.to_owned(),
            current: current.to_owned(),
        }));
    }
    // Bytes this document has never held: their upload has not been applied yet.
    Err(Outcome::NotYet)
}

/// A result or failure, already known to concern the current original, folded into `doc`.
fn apply_result(doc: &ImageDocument, change: &DocChange) -> ImageDocument {
    let mut doc = doc.clone();
    // Any result or final failure ends the wait a retry announced.
    doc.retrying = None;
    match change {
        DocChange::Uploaded(_) => {}
        DocChange::Renditions(e) => {
            doc.original.width = Some(e.source.width);
            doc.original.height = Some(e.source.height);
            doc.original.format = Some(e.source.format.clone());
            doc.original.camera = e.source.camera.clone();
            doc.renditions = Some(Renditions {
                thumb: rendition(&e.thumb),
                preview: rendition(&e.preview),
                source_etag: e.source.etag.clone(),
            });
            doc.placeholder = Some(e.placeholder.clone());
            if matches!(doc.status, Status::Pending | Status::Failed) {
                doc.status = Status::Processing;
                doc.error = None;
            }
        }
        DocChange::Tags(e) => {
            doc.tags = e.tags.clone();
            doc.categories = e.categories.clone();
            doc.text = e.text.clone();
            doc.model = Some(e.model.clone());
            doc.status = Status::Done;
            doc.error = None;
        }
        DocChange::Retrying(r, _) => {
            doc.retrying = Some(Retrying {
                stage: r.stage.clone(),
                reason: r.reason.clone(),
                attempt: r.attempt,
            });
        }
        DocChange::Failed(f) => {
            doc.status = Status::Failed;
            doc.error = Some(StageError {
                stage: f.event.stage.clone(),
                reason: f.event.reason.clone(),
                attempts: f.event.attempts,
            });
        }
    }
    doc
}

/// Whether two documents differ at most in their serving paths (which the handler adds to what
/// this module makes, and which follow from the rest).
fn served_alike(a: &ImageDocument, b: &ImageDocument) -> bool {
    let bare = |doc: &ImageDocument| {
        let mut doc = doc.clone();
        doc.links = None;
        if let Some(r) = doc.renditions.as_mut() {
            r.thumb.url = None;
            r.preview.url = None;
        }
        doc
    };
    bare(a) == bare(b)
}

/// Adds `etag` as the most recent earlier eTag, forgetting the oldest beyond the bound.
fn remember(earlier: &mut Vec<String>, etag: &str) {
    earlier.retain(|e| e != etag);
    earlier.push(etag.to_owned());
    let excess = earlier.len().saturating_sub(EARLIER_ETAGS);
    earlier.drain(..excess);
}

/// S3 quotes eTags in headers and some producers keep the quotes in events.
fn unquoted(etag: &str) -> &str {
    etag.trim_matches('"')
}

fn uploaded(upload: &Upload, earlier_etags: Vec<String>) -> ImageDocument {
    let Upload {
        image_id,
        bucket,
        key,
        size,
        etag,
        content_type,
        sequencer,
        at,
    } = upload;
    let parsed = OriginalKey::parse(key);
    let filename = parsed.map_or(key.as_str(), |k| k.filename).to_owned();
    let tenant = parsed.map_or(LEGACY_TENANT, |k| k.tenant).to_owned();
    ImageDocument {
        id: image_id.clone(),
        tenant,
        status: Status::Pending,
        created_at: *at,
        original: Original {
            bucket: bucket.clone(),
            key: key.clone(),
            filename,
            content_type: content_type.clone(),
            size: *size,
            etag: etag.clone(),
            sequencer: sequencer.clone(),
            format: None,
            width: None,
            height: None,
            camera: None,
            earlier_etags,
        },
        renditions: None,
        placeholder: None,
        tags: Vec::new(),
        categories: Vec::new(),
        text: Vec::new(),
        model: None,
        error: None,
        editor_tags: Vec::new(),
        retrying: None,
        stages: Default::default(),
        links: None,
    }
}

/// S3 sequencers are hex strings of varying length: compare them as numbers.
fn newer(candidate: &str, than: &str) -> bool {
    let norm = |s: &str| s.trim_start_matches('0').to_ascii_uppercase();
    let (a, b) = (norm(candidate), norm(than));
    (a.len(), a) > (b.len(), b)
}

fn rendition(info: &imgpipe_contract::event::RenditionInfo) -> Rendition {
    Rendition {
        bucket: info.bucket.clone(),
        key: info.key.clone(),
        url: None,
        width: info.width,
        height: info.height,
        content_type: info.content_type.clone(),
    }
}

/// One table row per rule.
#[cfg(test)]
#[path = "reduce_tests/mod.rs"]
mod rules;

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use imgpipe_contract::document::{BBox, Category, ModelInfo, Tag, TextLine};
    use imgpipe_contract::event::TagsReady;

    use super::*;

    fn uploaded_doc() -> ImageDocument {
        uploaded(
            &Upload {
                image_id: "img".to_owned(),
                bucket: "originals".to_owned(),
                key: "img/cat.jpg".to_owned(),
                size: 10,
                etag: Some("e1".to_owned()),
                content_type: None,
                sequencer: None,
                at: chrono::Utc
                    .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                    .single()
                    .expect("time"),
            },
            Vec::new(),
        )
    }

    #[test]
    fn tags_bring_their_categories_and_a_replay_changes_nothing() {
        let ready = TagsReady {
            image_id: "img".to_owned(),
            source_etag: Some("e1".to_owned()),
            tags: vec![Tag {
                label: "tabby".to_owned(),
                score: 0.9,
            }],
            categories: vec![
                Category {
                    name: "animal".to_owned(),
                    score: 0.95,
                },
                Category {
                    name: "animal/cat".to_owned(),
                    score: 0.91,
                },
            ],
            text: vec![TextLine {
                text: "TABBY CAT FOOD".to_owned(),
                score: 0.93,
                bbox: BBox {
                    x: 10,
                    y: 20,
                    width: 200,
                    height: 30,
                },
            }],
            model: ModelInfo {
                name: "efficientnet-lite0".to_owned(),
                version: "1".to_owned(),
            },
        };
        let change = DocChange::Tags(ready.clone());
        let Outcome::Write(doc) = reduce(Some(&uploaded_doc()), &change) else {
            panic!("tags are written");
        };
        assert_eq!(doc.status, Status::Done);
        assert_eq!(doc.categories, ready.categories);
        assert_eq!(doc.text, ready.text);
        assert_eq!(reduce(Some(&doc), &change), Outcome::Unchanged);
        // As stored, with its serving paths: a replay still writes nothing.
        let stored = crate::api::with_links(*doc);
        assert!(stored.links.is_some());
        assert_eq!(reduce(Some(&stored), &change), Outcome::Unchanged);
    }

    #[test]
    fn a_retry_shows_until_the_stage_answers_also_after_a_replay() {
        use imgpipe_contract::event::StageRetrying;
        let retry = |attempt| {
            DocChange::Retrying(
                StageRetrying {
                    image_id: "img".to_owned(),
                    stage: "resizer".to_owned(),
                    reason: "the file is cut off or damaged: no end-of-image marker".to_owned(),
                    attempt,
                },
                Some("e1".to_owned()),
            )
        };
        let Outcome::Write(waiting) = reduce(Some(&uploaded_doc()), &retry(1)) else {
            panic!("a retry is shown");
        };
        assert_eq!(waiting.status, Status::Pending);
        assert_eq!(waiting.retrying.as_ref().map(|r| r.attempt), Some(1));
        let gave_up = DocChange::Failed(crate::change::Failure {
            event: imgpipe_contract::event::StageFailed {
                image_id: "img".to_owned(),
                stage: "resizer".to_owned(),
                reason: "the file is cut off or damaged: no end-of-image marker".to_owned(),
                attempts: 3,
            },
            source_etag: Some("e1".to_owned()),
        });
        let Outcome::Write(failed) = reduce(Some(&waiting), &gave_up) else {
            panic!("the failure is written");
        };
        assert_eq!(
            (failed.status, failed.retrying.clone()),
            (Status::Failed, None)
        );
        // Its dead letter replayed: the failed image shows the new attempt.
        let Outcome::Write(replayed) = reduce(Some(&failed), &retry(1)) else {
            panic!("a replay's retry is shown");
        };
        assert!(replayed.retrying.is_some());
        let mut done = replayed.clone();
        done.status = Status::Done;
        done.retrying = None;
        assert_eq!(reduce(Some(&done), &retry(2)), Outcome::Unchanged);
    }

    #[test]
    fn tags_from_an_older_recognizer_have_no_categories() {
        let body = r#"{"image_id":"img","source_etag":null,
            "tags":[{"label":"tabby","score":0.9}],
            "model":{"name":"efficientnet-lite0","version":"1"}}"#;
        let ready: TagsReady = serde_json::from_str(body).expect("old TagsReady still parses");
        assert!(ready.categories.is_empty());
        let Outcome::Write(doc) = reduce(Some(&uploaded_doc()), &DocChange::Tags(ready)) else {
            panic!("tags are written");
        };
        assert!(doc.categories.is_empty());
        let json = serde_json::to_value(&*doc).expect("json");
        assert_eq!(json["categories"], serde_json::json!([]));
    }
}
