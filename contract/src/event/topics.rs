/// Version of the message schemas below; carried in every message's headers so a consumer can
/// refuse (dead-letter) what it does not understand instead of misreading it.
pub const SCHEMA_VERSION: &str = "1";

/// Routing keys. Storage notifications and pipeline events travel on different topics so the
/// object store (or MinIO, or an S3 bridge) never needs to know about pipeline internals.
pub struct Topic;

impl Topic {
    /// An object was created in a bucket that notifies (S3 event JSON).
    pub const OBJECT_CREATED: &'static str = "storage.object.created";
    /// The resizer wrote the renditions of an image ([`super::RenditionsReady`]).
    pub const RENDITIONS_READY: &'static str = "image.renditions.ready";
    /// The recognizer tagged an image ([`super::TagsReady`]).
    pub const TAGS_READY: &'static str = "image.tags.ready";
    /// A stage gave up on an image ([`super::StageFailed`]).
    pub const STAGE_FAILED: &'static str = "image.stage.failed";
    /// A stage's attempt failed and will be retried ([`super::StageRetrying`]): a note for
    /// people waiting on the image, not a state change.
    pub const STAGE_RETRYING: &'static str = "image.stage.retrying";
}
