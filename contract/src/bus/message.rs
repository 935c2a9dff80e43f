use std::collections::BTreeMap;

use serde::Serialize;

use crate::event::SCHEMA_VERSION;

/// Header names carried by every message.
pub mod headers {
    /// W3C trace context of the upload this message descends from.
    pub const TRACEPARENT: &str = "traceparent";
    pub const SCHEMA_VERSION: &str = "schema-version";
    /// The image the message concerns, when known, so failures can be attributed.
    pub const IMAGE_ID: &str = "image-id";
    /// The eTag of the original whose processing the message belongs to (no quotes), set on
    /// the object-created event and carried along by [`super::Message::follows`], so a stage's
    /// failure report says which version of the image failed.
    pub const SOURCE_ETAG: &str = "source-etag";

    /// A new W3C `traceparent` (version 00, sampled) for a trace that starts here (an upload).
    pub fn new_traceparent() -> String {
        let trace = uuid::Uuid::new_v4().simple().to_string();
        let span = &uuid::Uuid::new_v4().simple().to_string()[..16];
        format!("00-{trace}-{span}-01")
    }
}

/// A bus message: metadata only, never image bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Unique id, kept across retries and redeliveries (for dedupe and tracing).
    pub id: String,
    pub topic: String,
    pub content_type: String,
    pub headers: BTreeMap<String, String>,
    pub payload: Vec<u8>,
}

impl Message {
    /// A JSON message with a fresh id and the current schema version.
    pub fn json<T: Serialize>(topic: &str, body: &T) -> Result<Self, serde_json::Error> {
        let mut headers = BTreeMap::new();
        headers.insert(
            headers::SCHEMA_VERSION.to_owned(),
            SCHEMA_VERSION.to_owned(),
        );
        Ok(Message {
            id: uuid::Uuid::now_v7().to_string(),
            topic: topic.to_owned(),
            content_type: "application/json".to_owned(),
            headers,
            payload: serde_json::to_vec(body)?,
        })
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.insert(name.to_owned(), value.into());
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// Copies the trace context, image id and source eTag of `parent`, so a stage's output stays
    /// in its trace and names the version of the original it came from.
    pub fn follows(mut self, parent: &Message) -> Self {
        for name in [
            headers::TRACEPARENT,
            headers::IMAGE_ID,
            headers::SOURCE_ETAG,
        ] {
            if let Some(v) = parent.header(name) {
                self.headers
                    .entry(name.to_owned())
                    .or_insert_with(|| v.to_owned());
            }
        }
        self
    }
}
