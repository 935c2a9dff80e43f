//! Late and duplicate events through the handler and a real database: a result or failure made
//! from an original the key no longer holds is acknowledged (the handler answers Ok, so the
//! worker acks) and changes nothing; a failure never undoes a done image.

use std::sync::Arc;

use imgpipe_contract::bus::Message;
use imgpipe_contract::db::MetadataDb;
use imgpipe_contract::document::{ImageDocument, ModelInfo, Status, Tag};
use imgpipe_contract::event::{
    CreatedObject, RenditionInfo, RenditionsReady, S3EventRecord, SourceImage, StageFailed,
    TagsReady, Topic, object_created_message,
};
use imgpipe_db_sqlite::SqliteDb;
use imgpipe_metadata_store::MetadataHandler;
use imgpipe_runtime::worker::Handler;

const ID: &str = "0190a3e5-0000-7000-8000-000000000000";
const KEY: &str = "default/0190a3e5-0000-7000-8000-000000000000/cat.jpg";

/// The key written with the bytes `etag`, announced as the embedded store does.
fn upload(etag: &str, sequencer: &str) -> Message {
    object_created_message(S3EventRecord::object_created(
        "test",
        "us-east-1",
        "ObjectCreated:Put",
        CreatedObject {
            bucket: "originals".to_owned(),
            key: KEY.to_owned(),
            size: 1000,
            etag: Some(etag.to_owned()),
            content_type: Some("image/jpeg".to_owned()),
            sequencer: sequencer.to_owned(),
        },
    ))
    .expect("message")
}

/// The resizer's renditions of the upload `parent`, following it as the resizer does.
fn renditions(parent: &Message, etag: &str) -> Message {
    let rendition = |name: &str| RenditionInfo {
        bucket: "renditions".to_owned(),
        key: format!("default/{ID}/{etag}-{name}.webp"),
        width: 256,
        height: 192,
        content_type: "image/webp".to_owned(),
        size: 100,
    };
    let event = RenditionsReady {
        image_id: ID.to_owned(),
        source: SourceImage {
            bucket: "originals".to_owned(),
            key: KEY.to_owned(),
            etag: Some(etag.to_owned()),
            size: 1000,
            format: "jpeg".to_owned(),
            width: 4000,
            height: 3000,
            camera: None,
        },
        thumb: rendition("thumb"),
        preview: rendition("preview"),
        placeholder: "hash".to_owned(),
    };
    Message::json(Topic::RENDITIONS_READY, &event)
        .expect("json")
        .follows(parent)
}

/// The recognizer's tags for the renditions `parent`.
fn tags(parent: &Message, etag: &str, label: &str) -> Message {
    let event = TagsReady {
        image_id: ID.to_owned(),
        source_etag: Some(etag.to_owned()),
        tags: vec![Tag {
            label: label.to_owned(),
            score: 0.9,
        }],
        categories: Vec::new(),
        text: Vec::new(),
        model: ModelInfo {
            name: "m".to_owned(),
            version: "1".to_owned(),
        },
    };
    Message::json(Topic::TAGS_READY, &event)
        .expect("json")
        .follows(parent)
}

/// The worker runtime's report that a stage gave up on `parent`, following it.
fn failure(parent: &Message, stage: &str) -> Message {
    let event = StageFailed {
        image_id: ID.to_owned(),
        stage: stage.to_owned(),
        reason: "gave up".to_owned(),
        attempts: 5,
    };
    Message::json(Topic::STAGE_FAILED, &event)
        .expect("json")
        .follows(parent)
}

async fn document(db: &SqliteDb) -> ImageDocument {
    db.get(ID).await.expect("get").expect("a document")
}

#[tokio::test]
async fn late_events_of_a_replaced_original_are_acknowledged_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Arc::new(
        SqliteDb::open(&dir.path().join("meta.db"))
            .await
            .expect("db"),
    );
    let handler = MetadataHandler::new(db.clone(), "originals".to_owned());
    let handle = async |message: &Message| {
        handler
            .handle(message)
            .await
            .unwrap_or_else(|e| panic!("{} not acknowledged: {e}", message.topic))
    };

    let first = upload("e1", "0000000000000001");
    let first_renditions = renditions(&first, "e1");
    handle(&first).await;
    handle(&first_renditions).await;
    // The key is overwritten before the first version's tags come.
    let second = upload("e2", "0000000000000002");
    handle(&second).await;
    let replaced = document(&db).await;
    assert_eq!(replaced.status, Status::Pending);
    assert_eq!(replaced.original.earlier_etags, ["e1"]);

    handle(&tags(&first_renditions, "e1", "old tabby")).await;
    handle(&failure(&first_renditions, "recognizer")).await;
    handle(&renditions(&first, "e1")).await;
    assert_eq!(
        document(&db).await,
        replaced,
        "the first version's late events changed the document"
    );

    // The second version is processed; a late failure of its own does not undo it.
    let second_renditions = renditions(&second, "e2");
    let second_tags = tags(&second_renditions, "e2", "tabby");
    handle(&second_renditions).await;
    handle(&second_tags).await;
    let done = document(&db).await;
    assert_eq!(done.status, Status::Done);
    assert_eq!(done.tags[0].label, "tabby");
    handle(&failure(&second_renditions, "recognizer")).await;
    handle(&failure(&first, "resizer")).await;
    assert_eq!(document(&db).await, done, "a failure undid a done image");
}
