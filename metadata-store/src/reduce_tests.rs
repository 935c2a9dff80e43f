//! The reducer's rules, one table row each: the document before (or none), the change, and what
//! `reduce` must answer (write exactly this document, unchanged, or not yet).
//!
//! The rows pin today's behaviour. Rows marked `QUESTIONABLE` are rules the robustness issue is
//! going to change (a change made from an older original is applied; a late failure overrides a
//! success): update them with it.

use chrono::{DateTime, TimeZone, Utc};
use imgpipe_contract::document::{
    BBox, CameraInfo, Category, ImageDocument, ModelInfo, Original, Rendition, Renditions,
    StageError, Status, Tag, TextLine,
};
use imgpipe_contract::event::{
    RenditionInfo, RenditionsReady, SourceImage, StageFailed, TagsReady,
};

use super::{Outcome, reduce};
use crate::change::{DocChange, Upload};

const TENANT: &str = "acme";
const ID: &str = "img";
const KEY: &str = "acme/img/cat.jpg";

/// What `reduce` should answer.
#[derive(Debug)]
enum Expect {
    Write(Box<ImageDocument>),
    Unchanged,
    NotYet,
}

struct Row {
    rule: &'static str,
    current: Option<ImageDocument>,
    change: DocChange,
    expect: Expect,
}

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, minute, 0)
        .single()
        .expect("valid time")
}

// --- changes -----------------------------------------------------------------------------------

/// A storage notification for `KEY` with these bytes (`etag`) and this sequencer.
fn upload(etag: Option<&str>, sequencer: Option<&str>, minute: u32) -> Upload {
    Upload {
        image_id: ID.to_owned(),
        bucket: "originals".to_owned(),
        key: KEY.to_owned(),
        size: 1000 + u64::from(minute),
        etag: etag.map(str::to_owned),
        content_type: Some("image/jpeg".to_owned()),
        sequencer: sequencer.map(str::to_owned),
        at: at(minute),
    }
}

fn uploaded(etag: Option<&str>, sequencer: Option<&str>, minute: u32) -> DocChange {
    DocChange::Uploaded(upload(etag, sequencer, minute))
}

fn renditions_event(source_etag: &str) -> RenditionsReady {
    let rendition = |name: &str, side: u32| RenditionInfo {
        bucket: "renditions".to_owned(),
        key: format!("{ID}/{source_etag}/{name}.jpg"),
        width: side,
        height: side * 3 / 4,
        content_type: "image/jpeg".to_owned(),
        size: u64::from(side) * 10,
    };
    RenditionsReady {
        image_id: ID.to_owned(),
        source: SourceImage {
            bucket: "originals".to_owned(),
            key: KEY.to_owned(),
            etag: Some(source_etag.to_owned()),
            size: 1000,
            format: "jpeg".to_owned(),
            width: 4000,
            height: 3000,
            camera: Some(CameraInfo {
                make: Some("Fujifilm".to_owned()),
                ..CameraInfo::default()
            }),
        },
        thumb: rendition("thumb", 256),
        preview: rendition("preview", 1280),
        placeholder: format!("hash-of-{source_etag}"),
    }
}

fn renditions(source_etag: &str) -> DocChange {
    DocChange::Renditions(Box::new(renditions_event(source_etag)))
}

fn tags_event(source_etag: &str, label: &str) -> TagsReady {
    TagsReady {
        image_id: ID.to_owned(),
        source_etag: Some(source_etag.to_owned()),
        tags: vec![Tag {
            label: label.to_owned(),
            score: 0.9,
        }],
        categories: vec![Category {
            name: "animal".to_owned(),
            score: 0.95,
        }],
        text: vec![TextLine {
            text: "HELLO".to_owned(),
            score: 0.8,
            bbox: BBox {
                x: 1,
                y: 2,
                width: 30,
                height: 10,
            },
        }],
        model: ModelInfo {
            name: "efficientnet-lite0".to_owned(),
            version: "1".to_owned(),
        },
    }
}

fn tags(source_etag: &str, label: &str) -> DocChange {
    DocChange::Tags(tags_event(source_etag, label))
}

fn failed(stage: &str, attempts: u32) -> DocChange {
    DocChange::Failed(StageFailed {
        image_id: ID.to_owned(),
        stage: stage.to_owned(),
        reason: format!("{stage} gave up"),
        attempts,
    })
}

// --- documents, built field by field (not through `reduce`) -------------------------------------

/// The document a first upload creates: pending, nothing but the original.
fn fresh(upload: &Upload) -> ImageDocument {
    ImageDocument {
        id: upload.image_id.clone(),
        tenant: TENANT.to_owned(),
        status: Status::Pending,
        created_at: upload.at,
        original: Original {
            bucket: upload.bucket.clone(),
            key: upload.key.clone(),
            filename: "cat.jpg".to_owned(),
            content_type: upload.content_type.clone(),
            size: upload.size,
            etag: upload.etag.clone(),
            sequencer: upload.sequencer.clone(),
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

/// Pending, original `e1` with sequencer `0A`.
fn pending() -> ImageDocument {
    fresh(&upload(Some("e1"), Some("0A"), 0))
}

/// `doc` with the renditions of `source_etag` and what the resizer read from the original; the
/// status unchanged.
fn with_renditions(mut doc: ImageDocument, source_etag: &str) -> ImageDocument {
    let e = renditions_event(source_etag);
    doc.original.width = Some(e.source.width);
    doc.original.height = Some(e.source.height);
    doc.original.format = Some(e.source.format.clone());
    doc.original.camera = e.source.camera.clone();
    let rendition = |info: &RenditionInfo| Rendition {
        bucket: info.bucket.clone(),
        key: info.key.clone(),
        url: None,
        width: info.width,
        height: info.height,
        content_type: info.content_type.clone(),
    };
    doc.renditions = Some(Renditions {
        thumb: rendition(&e.thumb),
        preview: rendition(&e.preview),
        source_etag: e.source.etag.clone(),
    });
    doc.placeholder = Some(e.placeholder);
    doc
}

/// `doc` with the tags, categories, text and model of `source_etag`; the status unchanged.
fn with_tags(mut doc: ImageDocument, source_etag: &str, label: &str) -> ImageDocument {
    let e = tags_event(source_etag, label);
    doc.tags = e.tags;
    doc.categories = e.categories;
    doc.text = e.text;
    doc.model = Some(e.model);
    doc
}

/// Expect `reduce` to write exactly `doc`.
fn write(doc: ImageDocument) -> Expect {
    Expect::Write(Box::new(doc))
}

fn with_status(mut doc: ImageDocument, status: Status) -> ImageDocument {
    doc.status = status;
    doc
}

/// `doc` failed by `stage` after `attempts`.
fn with_error(mut doc: ImageDocument, stage: &str, attempts: u32) -> ImageDocument {
    doc.status = Status::Failed;
    doc.error = Some(StageError {
        stage: stage.to_owned(),
        reason: format!("{stage} gave up"),
        attempts,
    });
    doc
}

/// Renditions made from `e1`, waiting for tags.
fn processing() -> ImageDocument {
    with_status(with_renditions(pending(), "e1"), Status::Processing)
}

/// Renditions and tags of `e1`.
fn done() -> ImageDocument {
    with_status(with_tags(processing(), "e1", "tabby"), Status::Done)
}

// --- the table ---------------------------------------------------------------------------------

fn rows() -> Vec<Row> {
    let second = upload(Some("e2"), Some("0B"), 5);
    vec![
        // Uploads.
        Row {
            rule: "first upload: a pending document",
            current: None,
            change: uploaded(Some("e1"), Some("0A"), 0),
            expect: write(pending()),
        },
        Row {
            rule: "duplicate notification (same eTag): unchanged",
            current: Some(done()),
            change: uploaded(Some("e1"), Some("0A"), 0),
            expect: Expect::Unchanged,
        },
        Row {
            rule: "same eTag under a newer sequencer (same bytes again): unchanged",
            current: Some(done()),
            change: uploaded(Some("e1"), Some("0B"), 5),
            expect: Expect::Unchanged,
        },
        Row {
            rule: "new eTag for the same key, newer sequencer: starts over from the new original",
            current: Some(done()),
            change: DocChange::Uploaded(second.clone()),
            expect: write(fresh(&second)),
        },
        Row {
            rule: "stale sequencer (older upload of the key arriving late): unchanged",
            current: Some(fresh(&second)),
            change: uploaded(Some("e1"), Some("0A"), 0),
            expect: Expect::Unchanged,
        },
        Row {
            rule: "equal sequencer with another eTag: unchanged (not newer)",
            current: Some(pending()),
            change: uploaded(Some("e2"), Some("0A"), 5),
            expect: Expect::Unchanged,
        },
        Row {
            rule: "sequencers compare as hex numbers, not strings: 100 is newer than FF",
            current: Some(fresh(&upload(Some("e1"), Some("FF"), 0))),
            change: uploaded(Some("e2"), Some("100"), 5),
            expect: write(fresh(&upload(Some("e2"), Some("100"), 5))),
        },
        Row {
            rule: "sequencers ignore leading zeros and case: 000ff is not newer than FF",
            current: Some(fresh(&upload(Some("e1"), Some("FF"), 0))),
            change: uploaded(Some("e2"), Some("000ff"), 5),
            expect: Expect::Unchanged,
        },
        Row {
            // QUESTIONABLE: with no sequencer to order them, whichever upload arrives last wins,
            // even an older one delivered late.
            rule: "new eTag without a sequencer: starts over (last arrival wins)",
            current: Some(done()),
            change: uploaded(Some("e0"), None, 5),
            expect: write(fresh(&upload(Some("e0"), None, 5))),
        },
        // Changes before the upload.
        Row {
            rule: "renditions before the upload: not yet",
            current: None,
            change: renditions("e1"),
            expect: Expect::NotYet,
        },
        Row {
            rule: "tags before the upload: not yet",
            current: None,
            change: tags("e1", "tabby"),
            expect: Expect::NotYet,
        },
        Row {
            rule: "failure before the upload: not yet",
            current: None,
            change: failed("resizer", 5),
            expect: Expect::NotYet,
        },
        // Renditions.
        Row {
            rule: "renditions of a pending image: processing",
            current: Some(pending()),
            change: renditions("e1"),
            expect: write(processing()),
        },
        Row {
            rule: "duplicate renditions: unchanged",
            current: Some(processing()),
            change: renditions("e1"),
            expect: Expect::Unchanged,
        },
        Row {
            rule: "renditions after a failure: processing again, error cleared",
            current: Some(with_error(pending(), "resizer", 5)),
            change: renditions("e1"),
            expect: write(processing()),
        },
        Row {
            rule: "renditions replayed on a done image: unchanged",
            current: Some(done()),
            change: renditions("e1"),
            expect: Expect::Unchanged,
        },
        Row {
            rule: "renditions arriving after the tags: added, the image stays done",
            current: Some(with_status(
                with_tags(pending(), "e1", "tabby"),
                Status::Done,
            )),
            change: renditions("e1"),
            expect: write(done()),
        },
        Row {
            // QUESTIONABLE: renditions made from an older original (`e1`) replace the document's
            // after the key was overwritten (`e2`): the source eTag is not compared.
            rule: "renditions for an older original: applied",
            current: Some(fresh(&second)),
            change: renditions("e1"),
            expect: write(with_status(
                with_renditions(fresh(&second), "e1"),
                Status::Processing,
            )),
        },
        // Tags.
        Row {
            rule: "tags of a processing image: done",
            current: Some(processing()),
            change: tags("e1", "tabby"),
            expect: write(done()),
        },
        Row {
            rule: "duplicate tags: unchanged",
            current: Some(done()),
            change: tags("e1", "tabby"),
            expect: Expect::Unchanged,
        },
        Row {
            rule: "tags before the renditions (events reordered): done without renditions",
            current: Some(pending()),
            change: tags("e1", "tabby"),
            expect: write(with_status(
                with_tags(pending(), "e1", "tabby"),
                Status::Done,
            )),
        },
        Row {
            rule: "other tags for the same original (a new model): replace the old ones",
            current: Some(done()),
            change: tags("e1", "tiger cat"),
            expect: write(with_status(
                with_tags(processing(), "e1", "tiger cat"),
                Status::Done,
            )),
        },
        Row {
            rule: "tags after a failure (a replayed dead letter): done, error cleared",
            current: Some(with_error(processing(), "recognizer", 5)),
            change: tags("e1", "tabby"),
            expect: write(done()),
        },
        Row {
            // QUESTIONABLE: tags computed from an older original (`e1`) land on the document of
            // the new one (`e2`) and mark it done: `source_etag` is not compared.
            rule: "tags for an older original: applied, done",
            current: Some(fresh(&second)),
            change: tags("e1", "tabby"),
            expect: write(with_status(
                with_tags(fresh(&second), "e1", "tabby"),
                Status::Done,
            )),
        },
        // Failures.
        Row {
            rule: "failure of a pending image: failed, with the stage's error",
            current: Some(pending()),
            change: failed("resizer", 5),
            expect: write(with_error(pending(), "resizer", 5)),
        },
        Row {
            rule: "failure of a processing image: failed, renditions kept",
            current: Some(processing()),
            change: failed("recognizer", 5),
            expect: write(with_error(processing(), "recognizer", 5)),
        },
        Row {
            rule: "duplicate failure: unchanged",
            current: Some(with_error(processing(), "recognizer", 5)),
            change: failed("recognizer", 5),
            expect: Expect::Unchanged,
        },
        Row {
            rule: "another failure report: replaces the error",
            current: Some(with_error(processing(), "recognizer", 5)),
            change: failed("recognizer", 7),
            expect: write(with_error(processing(), "recognizer", 7)),
        },
        Row {
            // QUESTIONABLE: a late failure (e.g. a redelivered message that then timed out)
            // turns a done image into a failed one, tags kept; nothing says which version failed.
            rule: "failure after success: failed, tags kept",
            current: Some(done()),
            change: failed("recognizer", 5),
            expect: write(with_error(done(), "recognizer", 5)),
        },
    ]
}

#[test]
fn every_rule() {
    let mut wrong = Vec::new();
    for row in rows() {
        let got = reduce(row.current.as_ref(), &row.change);
        let ok = match (&row.expect, &got) {
            (Expect::Write(want), Outcome::Write(got)) => want == got,
            (Expect::Unchanged, Outcome::Unchanged) | (Expect::NotYet, Outcome::NotYet) => true,
            _ => false,
        };
        if !ok {
            wrong.push(format!(
                "{}:\n  expected {:?}\n  got      {got:?}",
                row.rule, row.expect
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Whatever a rule writes, the same change applied to the result changes nothing: a replayed
/// message is harmless.
#[test]
fn every_write_is_idempotent() {
    for row in rows() {
        if let Outcome::Write(next) = reduce(row.current.as_ref(), &row.change) {
            assert_eq!(
                reduce(Some(&next), &row.change),
                Outcome::Unchanged,
                "{}: applying the change twice wrote again",
                row.rule
            );
        }
    }
}

#[test]
fn rule_names_are_unique() {
    let rows = rows();
    let mut names: Vec<&str> = rows.iter().map(|r| r.rule).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), rows.len(), "two rows share a name");
}
