//! The reducer's rules, one table row each: the document before (or none), the change, and what
//! `reduce` must answer (write exactly this document, unchanged, or not yet).
//!
//! The rows pin the behaviour. Rows marked `QUESTIONABLE` are rules that may deserve a change.

use chrono::{DateTime, TimeZone, Utc};
use imgpipe_contract::document::{
    BBox, CameraInfo, Category, ImageDocument, ModelInfo, Original, Rendition, Renditions,
    StageError, Status, Tag, TextLine,
};
use imgpipe_contract::event::{
    RenditionInfo, RenditionsReady, SourceImage, StageFailed, TagsReady,
};

use super::{Ignored, Outcome, reduce};
use crate::change::{DocChange, Failure, Upload};

const TENANT: &str = "acme";
const ID: &str = "img";
const KEY: &str = "acme/img/cat.jpg";

/// What `reduce` should answer.
#[derive(Debug)]
enum Expect {
    Write(Box<ImageDocument>),
    Unchanged,
    NotYet,
    Ignored(Ignored),
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

/// A failure report that does not say which original failed (older producers).
fn failed(stage: &str, attempts: u32) -> DocChange {
    DocChange::Failed(Failure {
        event: StageFailed {
            image_id: ID.to_owned(),
            stage: stage.to_owned(),
            reason: format!("{stage} gave up"),
            attempts,
        },
        source_etag: None,
    })
}

/// A failure report for the work made from the original `source_etag`.
fn failed_from(source_etag: &str, stage: &str, attempts: u32) -> DocChange {
    let DocChange::Failed(mut failure) = failed(stage, attempts) else {
        unreachable!("failed() makes a failure");
    };
    failure.source_etag = Some(source_etag.to_owned());
    DocChange::Failed(failure)
}

/// Renditions whose event names no source eTag (older resizers).
fn renditions_without_etag() -> DocChange {
    let mut event = renditions_event("e1");
    event.source.etag = None;
    DocChange::Renditions(Box::new(event))
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
            earlier_etags: Vec::new(),
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

/// `doc` remembering these eTags as held by its key before.
fn with_earlier(mut doc: ImageDocument, etags: &[&str]) -> ImageDocument {
    doc.original.earlier_etags = etags.iter().map(|e| (*e).to_owned()).collect();
    doc
}

fn ignored_earlier(made_from: &str, current: &str) -> Expect {
    Expect::Ignored(Ignored::EarlierOriginal {
        made_from: made_from.to_owned(),
        current: current.to_owned(),
    })
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
    // The key overwritten: `e2` is current, `e1` what it held before.
    let replaced = || with_earlier(fresh(&second), &["e1"]);
    let replaced_processing = || with_status(with_renditions(replaced(), "e2"), Status::Processing);
    let replaced_done = || {
        with_status(
            with_tags(replaced_processing(), "e2", "tabby"),
            Status::Done,
        )
    };
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
            rule: "new eTag for the same key, newer sequencer: starts over from the new original, \
                   remembering the old eTag",
            current: Some(done()),
            change: DocChange::Uploaded(second.clone()),
            expect: write(replaced()),
        },
        Row {
            rule: "stale sequencer (older upload of the key arriving late): only its eTag is \
                   remembered, so its results are known to be outdated",
            current: Some(fresh(&second)),
            change: uploaded(Some("e1"), Some("0A"), 0),
            expect: write(replaced()),
        },
        Row {
            rule: "stale sequencer whose eTag is already remembered: unchanged",
            current: Some(replaced()),
            change: uploaded(Some("e1"), Some("0A"), 0),
            expect: Expect::Unchanged,
        },
        Row {
            rule: "equal sequencer with another eTag: not newer, only its eTag remembered",
            current: Some(pending()),
            change: uploaded(Some("e2"), Some("0A"), 5),
            expect: write(with_earlier(pending(), &["e2"])),
        },
        Row {
            rule: "sequencers compare as hex numbers, not strings: 100 is newer than FF",
            current: Some(fresh(&upload(Some("e1"), Some("FF"), 0))),
            change: uploaded(Some("e2"), Some("100"), 5),
            expect: write(with_earlier(
                fresh(&upload(Some("e2"), Some("100"), 5)),
                &["e1"],
            )),
        },
        Row {
            rule: "sequencers ignore leading zeros and case: 000ff is not newer than FF",
            current: Some(fresh(&upload(Some("e1"), Some("FF"), 0))),
            change: uploaded(Some("e2"), Some("000ff"), 5),
            expect: write(with_earlier(
                fresh(&upload(Some("e1"), Some("FF"), 0)),
                &["e2"],
            )),
        },
        Row {
            // QUESTIONABLE: with no sequencer to order them, whichever upload arrives last wins,
            // even an older one delivered late.
            rule: "new eTag without a sequencer: starts over (last arrival wins)",
            current: Some(done()),
            change: uploaded(Some("e0"), None, 5),
            expect: write(with_earlier(fresh(&upload(Some("e0"), None, 5)), &["e1"])),
        },
        Row {
            rule: "the key goes back to bytes it held before: that eTag is current, not earlier",
            current: Some(with_earlier(pending(), &["e0", "e2"])),
            change: DocChange::Uploaded(second.clone()),
            expect: write(with_earlier(fresh(&second), &["e0", "e1"])),
        },
        Row {
            rule: "earlier eTags are bounded: the oldest is forgotten",
            current: Some(with_earlier(
                pending(),
                &["a", "b", "c", "d", "e", "f", "g", "h"],
            )),
            change: DocChange::Uploaded(second.clone()),
            expect: write(with_earlier(
                fresh(&second),
                &["b", "c", "d", "e", "f", "g", "h", "e1"],
            )),
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
            rule: "renditions for an earlier original (late, after the key was overwritten): \
                   ignored",
            current: Some(replaced()),
            change: renditions("e1"),
            expect: ignored_earlier("e1", "e2"),
        },
        Row {
            rule: "renditions for an earlier original after the current one's: ignored, the \
                   current renditions kept",
            current: Some(replaced_processing()),
            change: renditions("e1"),
            expect: ignored_earlier("e1", "e2"),
        },
        Row {
            rule: "renditions for bytes whose upload is not applied yet: not yet",
            current: Some(pending()),
            change: renditions("e3"),
            expect: Expect::NotYet,
        },
        Row {
            rule: "renditions naming no eTag (older resizers): applied to the current original",
            current: Some(pending()),
            change: renditions_without_etag(),
            expect: write({
                let mut doc = processing();
                if let Some(r) = doc.renditions.as_mut() {
                    r.source_etag = None;
                }
                doc
            }),
        },
        Row {
            rule: "the source eTag compares without quotes",
            current: Some(pending()),
            change: renditions("\"e1\""),
            expect: write(with_status(
                with_renditions(pending(), "\"e1\""),
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
            rule: "tags after a failure of the same original (a retry that worked, a replayed \
                   dead letter): done, error cleared",
            current: Some(with_error(processing(), "recognizer", 5)),
            change: tags("e1", "tabby"),
            expect: write(done()),
        },
        Row {
            rule: "tags for an earlier original (late, after the key was overwritten): ignored, \
                   the image is not done",
            current: Some(replaced_processing()),
            change: tags("e1", "tabby"),
            expect: ignored_earlier("e1", "e2"),
        },
        Row {
            rule: "tags for an earlier original after the current one's: ignored",
            current: Some(replaced_done()),
            change: tags("e1", "tiger cat"),
            expect: ignored_earlier("e1", "e2"),
        },
        Row {
            rule: "tags for bytes whose upload is not applied yet: not yet",
            current: Some(processing()),
            change: tags("e3", "tabby"),
            expect: Expect::NotYet,
        },
        Row {
            rule: "tags for the current original after the key was overwritten: done",
            current: Some(replaced_processing()),
            change: tags("e2", "tabby"),
            expect: write(replaced_done()),
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
            rule: "failure of the current original: failed",
            current: Some(replaced_processing()),
            change: failed_from("e2", "recognizer", 5),
            expect: write(with_error(replaced_processing(), "recognizer", 5)),
        },
        Row {
            rule: "failure after success for the same original (a redelivered message that \
                   failed late): ignored, the image stays done",
            current: Some(done()),
            change: failed_from("e1", "recognizer", 5),
            expect: Expect::Ignored(Ignored::FailureAfterSuccess),
        },
        Row {
            rule: "failure after success, naming no original: ignored, the image stays done",
            current: Some(done()),
            change: failed("recognizer", 5),
            expect: Expect::Ignored(Ignored::FailureAfterSuccess),
        },
        Row {
            rule: "failure of an earlier original (late, after the key was overwritten): \
                   ignored",
            current: Some(replaced_processing()),
            change: failed_from("e1", "resizer", 5),
            expect: ignored_earlier("e1", "e2"),
        },
        Row {
            rule: "failure of an earlier original on the done current one: ignored",
            current: Some(replaced_done()),
            change: failed_from("e1", "resizer", 5),
            expect: ignored_earlier("e1", "e2"),
        },
        Row {
            rule: "failure of bytes whose upload is not applied yet: not yet",
            current: Some(processing()),
            change: failed_from("e3", "resizer", 5),
            expect: Expect::NotYet,
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
            (Expect::Ignored(want), Outcome::Ignored(got)) => want == got,
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
