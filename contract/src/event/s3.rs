//! The S3 event notification message (`Records[]`), as AWS S3, MinIO and our embedded store
//! emit it. Deserialisation is tolerant: fields other producers omit are optional, and fields we
//! do not use are ignored. That is also how MinIO's AMQP target body parses: it wraps the same
//! `Records` in `{"EventName", "Key", "Records"}`, and the two extra fields are skipped.

use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Serialize};

use super::{Topic, image_id_from_key};
use crate::bus::{Message, headers};

/// `{"Records": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct S3Event {
    #[serde(rename = "Records", default)]
    pub records: Vec<S3EventRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3EventRecord {
    #[serde(default = "default_event_version")]
    pub event_version: String,
    #[serde(default)]
    pub event_source: String,
    #[serde(default)]
    pub aws_region: String,
    pub event_time: DateTime<Utc>,
    /// `ObjectCreated:Put` (AWS) or `s3:ObjectCreated:Put` (MinIO).
    pub event_name: String,
    pub s3: S3Entity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Entity {
    #[serde(default)]
    pub s3_schema_version: String,
    #[serde(default)]
    pub configuration_id: String,
    pub bucket: S3Bucket,
    pub object: S3Object,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct S3Bucket {
    pub name: String,
    #[serde(default)]
    pub arn: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct S3Object {
    /// URL-encoded object key, as S3 sends it (`red+flower.jpg`); see [`decode_key`].
    pub key: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(rename = "eTag", default)]
    pub e_tag: Option<String>,
    #[serde(
        rename = "contentType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub content_type: Option<String>,
    /// Hex string, comparable only between events for the same key.
    #[serde(default)]
    pub sequencer: Option<String>,
}

fn default_event_version() -> String {
    "2.1".to_owned()
}

impl S3EventRecord {
    /// True for every `ObjectCreated:*` flavour, with or without MinIO's `s3:` prefix.
    pub fn is_object_created(&self) -> bool {
        self.event_name
            .trim_start_matches("s3:")
            .starts_with("ObjectCreated:")
    }

    /// The object key, decoded from its notification form.
    pub fn key(&self) -> String {
        decode_key(&self.s3.object.key)
    }
}

/// An object just created, as an event producer knows it.
#[derive(Debug, Clone)]
pub struct CreatedObject {
    pub bucket: String,
    /// The key as stored (not URL-encoded).
    pub key: String,
    pub size: u64,
    /// Without the surrounding quotes, as S3 events carry it.
    pub etag: Option<String>,
    pub content_type: Option<String>,
    /// Orders events for one key; see [`S3Object::sequencer`].
    pub sequencer: String,
}

impl S3EventRecord {
    /// A standard `ObjectCreated:*` record, for producers of our own (the embedded store, the
    /// upload-complete endpoint). `event_name` is e.g. `ObjectCreated:Put`.
    pub fn object_created(
        source: &str,
        region: &str,
        event_name: &str,
        object: CreatedObject,
    ) -> Self {
        S3EventRecord {
            event_version: "2.1".to_owned(),
            event_source: source.to_owned(),
            aws_region: region.to_owned(),
            event_time: Utc::now(),
            event_name: event_name.to_owned(),
            s3: S3Entity {
                s3_schema_version: "1.0".to_owned(),
                configuration_id: "imgpipe".to_owned(),
                bucket: S3Bucket {
                    arn: format!("arn:aws:s3:::{}", object.bucket),
                    name: object.bucket,
                },
                object: S3Object {
                    key: encode_key(&object.key),
                    size: Some(object.size),
                    e_tag: object.etag,
                    content_type: object.content_type,
                    sequencer: Some(object.sequencer),
                },
            },
        }
    }
}

/// The bus message announcing `record`. The upload is where an image's trace starts: every
/// later stage follows this message's trace context and source eTag.
pub fn object_created_message(record: S3EventRecord) -> Result<Message, serde_json::Error> {
    let image_id = image_id_from_key(&record.key()).map(str::to_owned);
    let etag = record
        .s3
        .object
        .e_tag
        .as_deref()
        .map(|e| e.trim_matches('"').to_owned())
        .filter(|e| !e.is_empty());
    let event = S3Event {
        records: vec![record],
    };
    let mut message = Message::json(Topic::OBJECT_CREATED, &event)?
        .with_header(headers::TRACEPARENT, headers::new_traceparent());
    if let Some(id) = image_id {
        message = message.with_header(headers::IMAGE_ID, id);
    }
    if let Some(etag) = etag {
        message = message.with_header(headers::SOURCE_ETAG, etag);
    }
    Ok(message)
}

/// A sequencer from a time: 16 hex digits of nanoseconds since the epoch, the form the embedded
/// store uses, so events for one key made by different producers still compare in time order.
pub fn sequencer_at(time: DateTime<Utc>) -> String {
    let nanos = time
        .timestamp_nanos_opt()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0);
    format!("{nanos:016X}")
}

/// Characters S3 leaves alone in notification keys (besides alphanumerics); space becomes `+`.
const KEY_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/')
    .remove(b' ');

/// Encodes a key the way S3 notifications do: percent-encoding, with `+` for a space.
pub fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY_SET)
        .to_string()
        .replace(' ', "+")
}

/// Decodes a notification key: `+` is a space, then percent-decoding.
pub fn decode_key(key: &str) -> String {
    let spaced = key.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_round_trips_like_s3() {
        let key = "0190/red flower+ümlaut.jpg";
        let encoded = encode_key(key);
        assert_eq!(encoded, "0190/red+flower%2B%C3%BCmlaut.jpg");
        assert_eq!(decode_key(&encoded), key);
    }

    #[test]
    fn parses_aws_and_minio_event_names() {
        let json = r#"{"Records":[{"eventVersion":"2.1","eventSource":"minio:s3","awsRegion":"",
            "eventTime":"2024-01-01T00:00:00.000Z","eventName":"s3:ObjectCreated:Put",
            "s3":{"s3SchemaVersion":"1.0","configurationId":"c","bucket":{"name":"originals","arn":"arn:aws:s3:::originals"},
            "object":{"key":"a/red+flower.jpg","size":5,"eTag":"abc","sequencer":"17A"}}}]}"#;
        let event: S3Event = serde_json::from_str(json).expect("valid event");
        assert!(event.records[0].is_object_created());
        assert_eq!(event.records[0].key(), "a/red flower.jpg");
    }

    /// The body MinIO's AMQP notification target publishes (captured shape, MinIO 2024+).
    #[test]
    fn parses_the_minio_amqp_body() {
        let json = r#"{"EventName":"s3:ObjectCreated:Put","Key":"originals/0190a/cat%20photo.jpg",
            "Records":[{"eventVersion":"2.0","eventSource":"minio:s3","awsRegion":"",
            "eventTime":"2024-05-01T10:00:00.123Z","eventName":"s3:ObjectCreated:Put",
            "userIdentity":{"principalId":"minioadmin"},
            "requestParameters":{"principalId":"minioadmin","region":"","sourceIPAddress":"172.18.0.1"},
            "responseElements":{"x-amz-id-2":"dd9025b","x-amz-request-id":"17CB","x-minio-origin-endpoint":"http://172.18.0.2:9000"},
            "s3":{"s3SchemaVersion":"1.0","configurationId":"Config",
              "bucket":{"name":"originals","ownerIdentity":{"principalId":"minioadmin"},"arn":"arn:aws:s3:::originals"},
              "object":{"key":"0190a%2Fcat+photo.jpg","size":1024,"eTag":"e0c3f","contentType":"image/jpeg",
                "userMetadata":{"content-type":"image/jpeg"},"sequencer":"17CB4D4B5E5A9C10"}},
            "source":{"host":"172.18.0.1","port":"","userAgent":"MinIO (linux; amd64) minio-go/v7.0.70"}}]}"#;
        let event: S3Event = serde_json::from_str(json).expect("MinIO body parses");
        let record = &event.records[0];
        assert!(record.is_object_created());
        assert_eq!(record.s3.bucket.name, "originals");
        assert_eq!(record.key(), "0190a/cat photo.jpg");
        assert_eq!(record.s3.object.size, Some(1024));
        assert_eq!(
            record.s3.object.sequencer.as_deref(),
            Some("17CB4D4B5E5A9C10")
        );
    }
}
