//! The event contract: the standard S3 notification JSON the object store emits, and the
//! pipeline events the services publish to each other.

mod pipeline;
mod s3;
mod topics;

pub use pipeline::{
    LEGACY_TENANT, OriginalKey, RenditionInfo, RenditionsReady, SourceImage, StageFailed,
    StageRetrying, TagsReady, image_id_from_key,
};
pub use s3::{
    CreatedObject, S3Bucket, S3Entity, S3Event, S3EventRecord, S3Object, decode_key, encode_key,
    object_created_message, sequencer_at,
};
pub use topics::{SCHEMA_VERSION, Topic};
