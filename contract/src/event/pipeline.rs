//! Events the pipeline stages publish. Each names the image it concerns and enough provenance
//! (the original's eTag, the model version) for the metadata store to apply it idempotently.

use serde::{Deserialize, Serialize};

use crate::document::{CameraInfo, Category, ModelInfo, Tag, TextLine};

/// The original object a stage worked from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceImage {
    pub bucket: String,
    pub key: String,
    pub etag: Option<String>,
    pub size: u64,
    /// Decoded format, e.g. `jpeg`.
    pub format: String,
    /// Dimensions after EXIF orientation was applied.
    pub width: u32,
    pub height: u32,
    /// Camera metadata from EXIF; absent from older resizers and files without any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera: Option<CameraInfo>,
}

/// One rendition written to the renditions bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenditionInfo {
    pub bucket: String,
    pub key: String,
    pub width: u32,
    pub height: u32,
    pub content_type: String,
    pub size: u64,
}

/// Published by the resizer once both renditions are durable in the object store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenditionsReady {
    pub image_id: String,
    pub source: SourceImage,
    pub thumb: RenditionInfo,
    pub preview: RenditionInfo,
    /// ThumbHash of the image, base64.
    pub placeholder: String,
}

/// Published by the recognizer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagsReady {
    pub image_id: String,
    /// eTag of the original the tags were computed from.
    pub source_etag: Option<String>,
    pub tags: Vec<Tag>,
    /// Editor categories (taxonomy) of the image, best first; absent from older recognizers.
    #[serde(default)]
    pub categories: Vec<Category>,
    /// Text read in the picture, in reading order; absent from older recognizers and when OCR
    /// is off.
    #[serde(default)]
    pub text: Vec<TextLine>,
    pub model: ModelInfo,
}

/// Published by the worker runtime when a stage gives up on a message for good.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageFailed {
    pub image_id: String,
    pub stage: String,
    pub reason: String,
    pub attempts: u32,
}

/// Image ids are the first path segment of an original's key (`<id>/<filename>`), so any stage
/// can name the image an object belongs to without a lookup.
pub fn image_id_from_key(key: &str) -> Option<&str> {
    let (id, rest) = key.split_once('/')?;
    (!id.is_empty() && !rest.is_empty()).then_some(id)
}
