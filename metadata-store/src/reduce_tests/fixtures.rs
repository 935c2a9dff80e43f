//! What the rule table is written with: the changes, the documents built field by field (not
//! through `reduce`), and what `reduce` is expected to answer.
pub(super) use chrono::{DateTime, TimeZone, Utc};
pub(super) use imgpipe_contract::document::{
    BBox, CameraInfo, Category, ImageDocument, ModelInfo, Original, Rendition, Renditions,
    StageError, Status, Tag, TextLine,
};
pub(super) use imgpipe_contract::event::{
    RenditionInfo, RenditionsReady, SourceImage, StageFailed, TagsReady,
};

pub(super) use super::super::{Ignored, Outcome, reduce};
pub(super) use crate::change::{DocChange, Failure, Upload};

pub(super) const TENANT: &str = "acme";
pub(super) const ID: &str = "img";
pub(super) const KEY: &str = "acme/img/cat.jpg";

/// What `reduce` should answer.
#[derive(Debug)]
pub(super) enum Expect {
    Write(Box<ImageDocument>),
    Unchanged,
    NotYet,
    Ignored(Ignored),
}

pub(super) struct Row {
    pub(super) rule: &'static str,
    pub(super) current: Option<ImageDocument>,
    pub(super) change: DocChange,
    pub(super) expect: Expect,
}

pub(super) fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, minute, 0)
        .single()
        .expect("valid time")
}

// --- changes -----------------------------------------------------------------------------------

/// A storage notification for `KEY` with these bytes (`etag`) and this sequencer.
pub(super) fn upload(etag: Option<&str>, sequencer: Option<&str>, minute: u32) -> Upload {
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

pub(super) fn uploaded(etag: Option<&str>, sequencer: Option<&str>, minute: u32) -> DocChange {
    DocChange::Uploaded(upload(etag, sequencer, minute))
}

pub(super) fn renditions_event(source_etag: &str) -> RenditionsReady {
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

pub(super) fn renditions(source_etag: &str) -> DocChange {
    DocChange::Renditions(Box::new(renditions_event(source_etag)))
}

pub(super) fn tags_event(source_etag: &str, label: &str) -> TagsReady {
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

pub(super) fn tags(source_etag: &str, label: &str) -> DocChange {
    DocChange::Tags(tags_event(source_etag, label))
}

/// A failure report that does not say which original failed (older producers).
pub(super) fn failed(stage: &str, attempts: u32) -> DocChange {
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
pub(super) fn failed_from(source_etag: &str, stage: &str, attempts: u32) -> DocChange {
    let DocChange::Failed(mut failure) = failed(stage, attempts) else {
        unreachable!("failed() makes a failure");
    };
    failure.source_etag = Some(source_etag.to_owned());
    DocChange::Failed(failure)
}

/// Renditions whose event names no source eTag (older resizers).
pub(super) fn renditions_without_etag() -> DocChange {
    let mut event = renditions_event("e1");
    event.source.etag = None;
    DocChange::Renditions(Box::new(event))
}

// --- documents, built field by field (not through `reduce`) -------------------------------------

/// The document a first upload creates: pending, nothing but the original.
pub(super) fn fresh(upload: &Upload) -> ImageDocument {
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
        editor_tags: Vec::new(),
        retrying: None,
        stages: Default::default(),
        links: None,
    }
}

/// Pending, original `e1` with sequencer `0A`.
pub(super) fn pending() -> ImageDocument {
    fresh(&upload(Some("e1"), Some("0A"), 0))
}

/// `doc` with the renditions of `source_etag` and what the resizer read from the original; the
/// status unchanged.
pub(super) fn with_renditions(mut doc: ImageDocument, source_etag: &str) -> ImageDocument {
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
pub(super) fn with_tags(mut doc: ImageDocument, source_etag: &str, label: &str) -> ImageDocument {
    let e = tags_event(source_etag, label);
    doc.tags = e.tags;
    doc.categories = e.categories;
    doc.text = e.text;
    doc.model = Some(e.model);
    doc
}

/// Expect `reduce` to write exactly `doc`.
pub(super) fn write(doc: ImageDocument) -> Expect {
    Expect::Write(Box::new(doc))
}

/// `doc` remembering these eTags as held by its key before.
pub(super) fn with_earlier(mut doc: ImageDocument, etags: &[&str]) -> ImageDocument {
    doc.original.earlier_etags = etags.iter().map(|e| (*e).to_owned()).collect();
    doc
}

pub(super) fn ignored_earlier(made_from: &str, current: &str) -> Expect {
    Expect::Ignored(Ignored::EarlierOriginal {
        made_from: made_from.to_owned(),
        current: current.to_owned(),
    })
}

pub(super) fn with_status(mut doc: ImageDocument, status: Status) -> ImageDocument {
    doc.status = status;
    doc
}

/// `doc` failed by `stage` after `attempts`.
pub(super) fn with_error(mut doc: ImageDocument, stage: &str, attempts: u32) -> ImageDocument {
    doc.status = Status::Failed;
    doc.error = Some(StageError {
        stage: stage.to_owned(),
        reason: format!("{stage} gave up"),
        attempts,
    });
    doc
}

/// Renditions made from `e1`, waiting for tags.
pub(super) fn processing() -> ImageDocument {
    with_status(with_renditions(pending(), "e1"), Status::Processing)
}

/// Renditions and tags of `e1`.
pub(super) fn done() -> ImageDocument {
    with_status(with_tags(processing(), "e1", "tabby"), Status::Done)
}
