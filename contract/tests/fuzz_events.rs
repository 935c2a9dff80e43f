//! Bounded fuzzing of the event parsers: S3 notifications (ours, AWS's and MinIO's shapes) and
//! the pipeline events. Whatever bytes arrive on a topic, parsing answers a value or an error
//! and never panics, nor does reading the parsed record (its key, its image id).

use imgpipe_contract::event::{
    CreatedObject, OriginalKey, RenditionsReady, S3Event, S3EventRecord, StageFailed, TagsReady,
    decode_key, image_id_from_key, object_created_message,
};
use proptest::prelude::*;

/// The body MinIO's AMQP target publishes (captured shape, MinIO 2024+).
const MINIO: &str = r#"{"EventName":"s3:ObjectCreated:Put","Key":"originals/0190a/cat%20photo.jpg",
"Records":[{"eventVersion":"2.0","eventSource":"minio:s3","awsRegion":"",
"eventTime":"2024-05-01T10:00:00.123Z","eventName":"s3:ObjectCreated:Put",
"userIdentity":{"principalId":"minioadmin"},
"s3":{"s3SchemaVersion":"1.0","configurationId":"Config",
"bucket":{"name":"originals","ownerIdentity":{"principalId":"minioadmin"},"arn":"arn:aws:s3:::originals"},
"object":{"key":"default%2F0190a%2Fcat+photo.jpg","size":1024,"eTag":"e0c3f","contentType":"image/jpeg",
"sequencer":"17CB4D4B5E5A9C10"}}}]}"#;

const RENDITIONS: &str = r#"{"image_id":"0190a","source":{"bucket":"originals",
"key":"default/0190a/cat.jpg","etag":"e1","size":1000,"format":"jpeg","width":4000,"height":3000,
"camera":{"make":"Fujifilm","taken_at":"2024-05-01T14:03:07+02:00","orientation":6,
"gps":{"latitude":48.85,"longitude":2.35}}},
"thumb":{"bucket":"renditions","key":"default/0190a/thumb.webp","width":256,"height":192,"content_type":"image/webp","size":2560},
"preview":{"bucket":"renditions","key":"default/0190a/preview.webp","width":1280,"height":960,"content_type":"image/webp","size":12800},
"placeholder":"1QcSHQRnh493V4dIh4eXh1h4kJUI"}"#;

const TAGS: &str = r#"{"image_id":"0190a","source_etag":"e1","tags":[{"label":"tabby","score":0.9}],
"categories":[{"name":"animal/cat","score":0.91}],
"text":[{"text":"CAT FOOD","score":0.93,"bbox":{"x":10,"y":20,"width":200,"height":30}}],
"model":{"name":"efficientnet-lite0","version":"1"}}"#;

const FAILED: &str =
    r#"{"image_id":"0190a","stage":"resizer","reason":"corrupt JPEG","attempts":5}"#;

/// The event the embedded store and `/complete` publish.
fn ours() -> Vec<u8> {
    let record = S3EventRecord::object_created(
        "imgpipe:s3",
        "us-east-1",
        "ObjectCreated:Put",
        CreatedObject {
            bucket: "originals".to_owned(),
            key: "default/0190a/red flower+ümlaut.jpg".to_owned(),
            size: 1024,
            etag: Some("e0c3f".to_owned()),
            content_type: Some("image/jpeg".to_owned()),
            sequencer: "0000000000000001".to_owned(),
        },
    );
    object_created_message(record).expect("message").payload
}

fn samples() -> Vec<Vec<u8>> {
    vec![
        ours(),
        MINIO.as_bytes().to_vec(),
        RENDITIONS.as_bytes().to_vec(),
        TAGS.as_bytes().to_vec(),
        FAILED.as_bytes().to_vec(),
    ]
}

/// One edit of a sample: a byte replaced, inserted or removed, or the body cut short.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Bytes that matter to JSON more often than chance would pick them.
    let byte = prop_oneof![
        any::<u8>(),
        prop::sample::select(b"{}[]\":,\\%+-0123456789.eE ntfu".to_vec()),
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(at, b)| Edit::Replace(at, b)),
        (any::<usize>(), byte).prop_map(|(at, b)| Edit::Insert(at, b)),
        any::<usize>().prop_map(Edit::Remove),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn mutate(mut body: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        let len = body.len();
        match *edit {
            Edit::Replace(at, b) if len > 0 => body[at % len] = b,
            Edit::Insert(at, b) => body.insert(at % (len + 1), b),
            Edit::Remove(at) if len > 0 => {
                body.remove(at % len);
            }
            Edit::Truncate(at) => body.truncate(at % (len + 1)),
            _ => {}
        }
    }
    body
}

/// Everything a consumer does with a body of any topic.
fn parse_everything(body: &[u8]) {
    if let Ok(event) = serde_json::from_slice::<S3Event>(body) {
        for record in &event.records {
            let _ = record.is_object_created();
            let key = record.key();
            let _ = image_id_from_key(&key);
            let _ = OriginalKey::parse(&key);
        }
    }
    let _ = serde_json::from_slice::<RenditionsReady>(body);
    let _ = serde_json::from_slice::<TagsReady>(body);
    let _ = serde_json::from_slice::<StageFailed>(body);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn mutated_events_never_panic(
        sample in 0usize..5,
        edits in prop::collection::vec(edit(), 1..12),
    ) {
        parse_everything(&mutate(samples()[sample].clone(), &edits));
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in any::<Vec<u8>>()) {
        parse_everything(&body);
    }

    /// Well-formed events whose key and eTag are anything, percent-escapes included.
    #[test]
    fn any_notification_key_is_read_without_panic(
        key in r"([%+/a-zA-Z0-9 ]|%[0-9A-Fa-f]{0,2}|.){0,80}",
        etag in any::<String>(),
        sequencer in any::<String>(),
    ) {
        let body = serde_json::json!({"Records": [{
            "eventTime": "2024-05-01T10:00:00Z",
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "originals"},
                   "object": {"key": key, "eTag": etag, "sequencer": sequencer}}
        }]});
        let bytes = serde_json::to_vec(&body).expect("json");
        let event: Result<S3Event, _> = serde_json::from_slice(&bytes);
        prop_assert!(event.is_ok(), "{event:?}");
        parse_everything(&bytes);
        let _ = decode_key(&key);
    }
}
