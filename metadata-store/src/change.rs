use chrono::{DateTime, Utc};
use imgpipe_contract::bus::{Message, headers};
use imgpipe_contract::event::{
    RenditionsReady, S3Event, StageFailed, StageRetrying, TagsReady, Topic, image_id_from_key,
};

/// An original object as its storage notification describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub image_id: String,
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    pub content_type: Option<String>,
    pub sequencer: Option<String>,
    pub at: DateTime<Utc>,
}

/// One fact about one image, decoded from a bus message.
#[derive(Debug, Clone, PartialEq)]
pub enum DocChange {
    /// The original landed in the object store.
    Uploaded(Upload),
    /// Boxed: with camera metadata it is several times the size of the others.
    Renditions(Box<RenditionsReady>),
    Tags(TagsReady),
    Failed(Failure),
    /// A stage will try again; the eTag of the original it was working on, when known.
    Retrying(StageRetrying, Option<String>),
}

/// A stage's failure report, with the version of the original the failed work was made from
/// when the report's message says it (the `source-etag` header; older producers do not).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub event: StageFailed,
    pub source_etag: Option<String>,
}

impl DocChange {
    pub fn image_id(&self) -> &str {
        match self {
            DocChange::Uploaded(u) => &u.image_id,
            DocChange::Renditions(e) => &e.image_id,
            DocChange::Tags(e) => &e.image_id,
            DocChange::Failed(f) => &f.event.image_id,
            DocChange::Retrying(r, _) => &r.image_id,
        }
    }

    /// The eTag of the original a stage's result or failure was made from, when it says.
    pub fn source_etag(&self) -> Option<&str> {
        match self {
            DocChange::Uploaded(_) => None,
            DocChange::Renditions(e) => e.source.etag.as_deref(),
            DocChange::Tags(e) => e.source_etag.as_deref(),
            DocChange::Failed(f) => f.source_etag.as_deref(),
            DocChange::Retrying(_, etag) => etag.as_deref(),
        }
    }

    /// Decodes a message into the changes it carries (an S3 event may hold several records;
    /// records whose key is not an image original are ignored).
    pub fn from_message(
        message: &Message,
        originals_bucket: &str,
    ) -> Result<Vec<DocChange>, serde_json::Error> {
        let body = &message.payload;
        Ok(match message.topic.as_str() {
            Topic::OBJECT_CREATED => {
                let event: S3Event = serde_json::from_slice(body)?;
                event
                    .records
                    .into_iter()
                    .filter(|r| r.is_object_created() && r.s3.bucket.name == originals_bucket)
                    .filter_map(|r| {
                        let key = r.key();
                        let image_id = image_id_from_key(&key)?.to_owned();
                        Some(DocChange::Uploaded(Upload {
                            image_id,
                            bucket: r.s3.bucket.name,
                            size: r.s3.object.size.unwrap_or(0),
                            etag: r.s3.object.e_tag.map(|e| e.trim_matches('"').to_owned()),
                            content_type: r.s3.object.content_type,
                            sequencer: r.s3.object.sequencer,
                            at: r.event_time,
                            key,
                        }))
                    })
                    .collect()
            }
            Topic::RENDITIONS_READY => vec![DocChange::Renditions(Box::new(
                serde_json::from_slice(body)?,
            ))],
            Topic::TAGS_READY => vec![DocChange::Tags(serde_json::from_slice(body)?)],
            Topic::STAGE_FAILED => vec![DocChange::Failed(Failure {
                event: serde_json::from_slice(body)?,
                source_etag: source_etag(message),
            })],
            Topic::STAGE_RETRYING => vec![DocChange::Retrying(
                serde_json::from_slice(body)?,
                source_etag(message),
            )],
            _ => Vec::new(),
        })
    }
}

/// The `source-etag` header, unquoted.
fn source_etag(message: &Message) -> Option<String> {
    message
        .header(headers::SOURCE_ETAG)
        .map(|e| e.trim_matches('"').to_owned())
        .filter(|e| !e.is_empty())
}

#[cfg(test)]
mod tests {
    use imgpipe_contract::event::{CreatedObject, S3EventRecord, object_created_message};

    use super::*;

    /// The upload's eTag rides along every message that follows it, so a stage's failure report
    /// (published by the worker runtime, which knows nothing of eTags) names the original that
    /// failed.
    #[test]
    fn a_failure_report_names_the_original_of_the_work_that_failed() {
        let record = S3EventRecord::object_created(
            "test",
            "us-east-1",
            "ObjectCreated:Put",
            CreatedObject {
                bucket: "originals".to_owned(),
                key: "acme/img/cat.jpg".to_owned(),
                size: 10,
                etag: Some("\"e1\"".to_owned()),
                content_type: None,
                sequencer: "0A".to_owned(),
            },
        );
        let upload = object_created_message(record).expect("message");
        let renditions = Message::json(Topic::RENDITIONS_READY, &serde_json::json!({}))
            .expect("message")
            .follows(&upload);
        let failed = StageFailed {
            image_id: "img".to_owned(),
            stage: "recognizer".to_owned(),
            reason: "gave up".to_owned(),
            attempts: 5,
        };
        let report = Message::json(Topic::STAGE_FAILED, &failed)
            .expect("message")
            .follows(&renditions);
        let changes = DocChange::from_message(&report, "originals").expect("parses");
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].source_etag(), Some("e1"));

        let unlabelled = Message::json(Topic::STAGE_FAILED, &failed).expect("message");
        let changes = DocChange::from_message(&unlabelled, "originals").expect("parses");
        assert_eq!(
            changes[0].source_etag(),
            None,
            "older producers say nothing"
        );
    }
}
