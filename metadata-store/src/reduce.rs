//! How each change folds into a document. Pure and idempotent: applying the same change twice
//! yields `None` the second time (nothing to write), and a stale change (an older upload of the
//! same key, per the S3 sequencer) is ignored.

use imgpipe_contract::document::{
    ImageDocument, Original, Rendition, Renditions, StageError, Status,
};
use imgpipe_contract::event::{LEGACY_TENANT, OriginalKey};

use crate::change::{DocChange, Upload};

/// What applying a change to the current document gives.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Write this document.
    Write(Box<ImageDocument>),
    /// Already reflected (or stale): nothing to do.
    Unchanged,
    /// The change needs a document that does not exist yet (events raced): try again later.
    NotYet,
}

pub fn reduce(current: Option<&ImageDocument>, change: &DocChange) -> Outcome {
    let next = match (current, change) {
        (None, DocChange::Uploaded(upload)) => uploaded(upload),
        (Some(doc), DocChange::Uploaded(upload)) => {
            let same = doc.original.etag == upload.etag;
            let stale = match (&doc.original.sequencer, &upload.sequencer) {
                (Some(old), Some(new)) => !newer(new, old),
                _ => false,
            };
            if same || stale {
                return Outcome::Unchanged;
            }
            // The key was overwritten with new bytes: start over from the new original.
            uploaded(upload)
        }
        (None, _) => return Outcome::NotYet,
        (Some(doc), DocChange::Renditions(e)) => {
            let mut doc = doc.clone();
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
            doc
        }
        (Some(doc), DocChange::Tags(e)) => {
            let mut doc = doc.clone();
            doc.tags = e.tags.clone();
            doc.categories = e.categories.clone();
            doc.text = e.text.clone();
            doc.model = Some(e.model.clone());
            doc.status = Status::Done;
            doc.error = None;
            doc
        }
        (Some(doc), DocChange::Failed(e)) => {
            let mut doc = doc.clone();
            doc.status = Status::Failed;
            doc.error = Some(StageError {
                stage: e.stage.clone(),
                reason: e.reason.clone(),
                attempts: e.attempts,
            });
            doc
        }
    };
    match current {
        Some(doc) if *doc == next => Outcome::Unchanged,
        _ => Outcome::Write(Box::new(next)),
    }
}

fn uploaded(upload: &Upload) -> ImageDocument {
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
        },
        renditions: None,
        placeholder: None,
        tags: Vec::new(),
        categories: Vec::new(),
        text: Vec::new(),
        model: None,
        error: None,
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
#[path = "reduce_tests.rs"]
mod rules;

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use imgpipe_contract::document::{BBox, Category, ModelInfo, Tag, TextLine};
    use imgpipe_contract::event::TagsReady;

    use super::*;

    fn uploaded_doc() -> ImageDocument {
        uploaded(&Upload {
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
        })
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
