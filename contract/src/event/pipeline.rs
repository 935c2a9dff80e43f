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

/// Published by the worker runtime when a stage's attempt failed and will be tried again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRetrying {
    pub image_id: String,
    pub stage: String,
    pub reason: String,
    /// The attempt that failed (1 = the first).
    pub attempt: u32,
}

/// The tenant of originals written before tenants existed (keys `<id>/<filename>`).
pub const LEGACY_TENANT: &str = "default";

/// What an original's key says: `<tenant>/<image id>/<filename>`, so any stage (and any storage
/// policy at scale) knows the tenant and the image an object belongs to without a lookup. Keys
/// of the older form `<image id>/<filename>` belong to [`LEGACY_TENANT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OriginalKey<'a> {
    pub tenant: &'a str,
    pub image_id: &'a str,
    pub filename: &'a str,
}

impl<'a> OriginalKey<'a> {
    pub fn parse(key: &'a str) -> Option<Self> {
        let mut parts = key.split('/');
        let segments: Vec<&str> = parts.by_ref().take(4).collect();
        let (tenant, image_id, filename) = match segments[..] {
            [tenant, id, name] => (tenant, id, name),
            [id, name] => (LEGACY_TENANT, id, name),
            _ => return None,
        };
        let well_formed = !tenant.is_empty() && !image_id.is_empty() && !filename.is_empty();
        well_formed.then_some(OriginalKey {
            tenant,
            image_id,
            filename,
        })
    }

    /// The key of a new original.
    pub fn format(tenant: &str, image_id: &str, filename: &str) -> String {
        format!("{tenant}/{image_id}/{filename}")
    }
}

/// The image an original's key belongs to (see [`OriginalKey`]).
pub fn image_id_from_key(key: &str) -> Option<&str> {
    OriginalKey::parse(key).map(|k| k.image_id)
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn keys_name_tenant_image_and_file() {
        let key = OriginalKey::format("news-desk", "0190-aa", "cat.jpg");
        assert_eq!(key, "news-desk/0190-aa/cat.jpg");
        let parsed = OriginalKey::parse(&key).expect("parses");
        assert_eq!(
            (parsed.tenant, parsed.image_id, parsed.filename),
            ("news-desk", "0190-aa", "cat.jpg")
        );
        let legacy = OriginalKey::parse("0190-aa/cat.jpg").expect("older keys parse");
        assert_eq!((legacy.tenant, legacy.image_id), (LEGACY_TENANT, "0190-aa"));
        for bad in ["", "a", "a/", "/a/b", "a//b", "t/i/f/x", "t/i/"] {
            assert_eq!(OriginalKey::parse(bad), None, "{bad:?}");
        }
        assert_eq!(image_id_from_key("t/i/f.jpg"), Some("i"));
    }
}
