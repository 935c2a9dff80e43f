use chrono::{DateTime, Utc};
use imgpipe_contract::bus::Message;
use imgpipe_contract::event::{
    RenditionsReady, S3Event, StageFailed, TagsReady, Topic, image_id_from_key,
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
    Failed(StageFailed),
}

impl DocChange {
    pub fn image_id(&self) -> &str {
        match self {
            DocChange::Uploaded(u) => &u.image_id,
            DocChange::Renditions(e) => &e.image_id,
            DocChange::Tags(e) => &e.image_id,
            DocChange::Failed(e) => &e.image_id,
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
            Topic::STAGE_FAILED => vec![DocChange::Failed(serde_json::from_slice(body)?)],
            _ => Vec::new(),
        })
    }
}
