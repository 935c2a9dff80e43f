//! The one JSON document per image that the metadata store keeps and the query API serves.
//! Extend it; never rename a field: browsers and editors' scripts read it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Uploaded, waiting for the resizer.
    Pending,
    /// Renditions made, waiting for tags.
    Processing,
    Done,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Processing => "processing",
            Status::Done => "done",
            Status::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Status::Pending,
            "processing" => Status::Processing,
            "done" => Status::Done,
            "failed" => Status::Failed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageDocument {
    pub id: String,
    /// Who the image belongs to: the tenant of the key that uploaded it, also the first segment of
    /// its original's key. Documents written before tenants existed belong to `default`.
    #[serde(default = "legacy_tenant")]
    pub tenant: String,
    pub status: Status,
    pub created_at: DateTime<Utc>,
    pub original: Original,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renditions: Option<Renditions>,
    /// ThumbHash (base64) for an instant blurred preview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Editor-facing categories derived from the tags' model output (`animal`, `animal/cat`),
    /// best first. Filtering by tag matches these names too.
    #[serde(default)]
    pub categories: Vec<Category>,
    /// Lines of text read in the picture (OCR of the preview), in reading order.
    #[serde(default)]
    pub text: Vec<TextLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StageError>,
    /// Tags an editor added by hand (`PATCH /api/images/{id}`): kept apart from the model's,
    /// never touched by a stage or a reprocess, found by `?tag=` and `?q=` like them.
    #[serde(default)]
    pub editor_tags: Vec<String>,
    /// The last attempt of a stage failed and it will be tried again: what went wrong, so a
    /// person sees why the image is late. Cleared by the stage's next result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrying: Option<Retrying>,
    /// When each stage's result was stored (the upload's time is `created_at`).
    #[serde(default, skip_serializing_if = "StageTimes::is_empty")]
    pub stages: StageTimes,
    /// Where to download the original; like the renditions' `url`, a path that follows from the
    /// id and the original's eTag, kept in the stored document so lists are served as stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
}

/// When each stage's result was stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageTimes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resized: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tagged: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<DateTime<Utc>>,
}

impl StageTimes {
    pub fn is_empty(&self) -> bool {
        *self == StageTimes::default()
    }
}

/// A stage's failed attempt that will be retried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retrying {
    pub stage: String,
    pub reason: String,
    /// The attempt that failed (1 = the first).
    pub attempt: u32,
}

/// Serve-time links of a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    /// Downloads the original (a redirect to a short-lived URL of the object store).
    pub original: String,
}

/// The longest editor tag, in characters, and how many one image may carry.
pub const MAX_EDITOR_TAG_CHARS: usize = 64;
pub const MAX_EDITOR_TAGS: usize = 50;

fn legacy_tenant() -> String {
    crate::event::LEGACY_TENANT.to_owned()
}

impl ImageDocument {
    /// What a search (`GET /api/images?q=`) looks through, lowercased: the file name, the tag
    /// labels, the category names (`animal/cat` also as `animal` and `cat`) and the text read in
    /// the picture. Both metadata backends index exactly this.
    pub fn search_text(&self) -> String {
        let mut parts: Vec<&str> = vec![self.original.filename.as_str()];
        parts.extend(self.tags.iter().map(|t| t.label.as_str()));
        for category in &self.categories {
            parts.push(category.name.as_str());
            parts.extend(category.name.split('/'));
        }
        parts.extend(self.text.iter().map(|l| l.text.as_str()));
        parts.extend(self.editor_tags.iter().map(String::as_str));
        parts.join("\n").to_lowercase()
    }

    /// What `?tag=` matches, lowercased and without repeats: the model's tag labels, the
    /// category names and the editor's tags.
    pub fn labels(&self) -> Vec<String> {
        let mut labels: Vec<String> = self
            .tags
            .iter()
            .map(|t| t.label.as_str())
            .chain(self.categories.iter().map(|c| c.name.as_str()))
            .chain(self.editor_tags.iter().map(String::as_str))
            .map(str::to_lowercase)
            .collect();
        labels.sort();
        labels.dedup();
        labels
    }

    /// The camera as the facets name it: make and model (`Canon EOS R5`), the make left out
    /// when the model already starts with it (`NIKON D850`, not `NIKON CORPORATION NIKON D850`).
    pub fn camera_name(&self) -> Option<String> {
        let camera = self.original.camera.as_ref()?;
        let make = camera.make.as_deref().map(str::trim).unwrap_or("");
        let model = camera.model.as_deref().map(str::trim).unwrap_or("");
        let first_word = make.split_whitespace().next().unwrap_or("");
        let name = if model.is_empty() {
            make.to_owned()
        } else if first_word.is_empty()
            || model.to_lowercase().starts_with(&first_word.to_lowercase())
        {
            model.to_owned()
        } else {
            format!("{make} {model}")
        };
        (!name.is_empty()).then_some(name)
    }

    /// The month the facets file the image under (`2024-05`): when it was taken if the camera
    /// says, else when it was uploaded.
    pub fn month(&self) -> String {
        self.original
            .camera
            .as_ref()
            .and_then(|c| c.taken_at.as_deref())
            .and_then(|t| t.get(..7))
            .filter(|m| {
                let b = m.as_bytes();
                b[..4].iter().all(u8::is_ascii_digit)
                    && b[4] == b'-'
                    && b[5..].iter().all(u8::is_ascii_digit)
            })
            .map(str::to_owned)
            .unwrap_or_else(|| self.created_at.format("%Y-%m").to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Original {
    pub bucket: String,
    pub key: String,
    pub filename: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// S3 sequencer of the notification that created it (orders overwrites of one key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequencer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// What the camera recorded (EXIF), when the file says anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera: Option<CameraInfo>,
    /// eTags of the bytes this key held before (the most recent last, a few at most): results
    /// made from them that arrive late are ignored instead of landing on the current original.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_etags: Vec<String>,
}

/// Camera metadata from the original's EXIF, what editors sort and credit by. Every field is
/// optional: phones, scanners and editors each write a different subset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CameraInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub make: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lens: Option<String>,
    /// When the picture was taken (`DateTimeOriginal`), ISO 8601: `2024-05-01T14:03:07`, with
    /// the UTC offset (`+02:00`) when the camera recorded one; cameras store local time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken_at: Option<String>,
    /// EXIF orientation as stored (1-8); renditions are already turned upright.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orientation: Option<u16>,
    /// Where it was taken; only kept when `resizer.keep_gps` is on (a home address is one
    /// photo away).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gps: Option<GpsPosition>,
}

impl CameraInfo {
    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        *self == CameraInfo::default()
    }
}

/// A WGS 84 position, decimal degrees (south and west negative), altitude in metres.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpsPosition {
    pub latitude: f64,
    pub longitude: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub altitude: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Renditions {
    pub thumb: Rendition,
    pub preview: Rendition,
    /// eTag of the original these were made from; a replay from the same original is a no-op.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_etag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rendition {
    pub bucket: String,
    pub key: String,
    /// A stable path (`/api/images/{id}/thumb?v=…`) a browser can load and cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub width: u32,
    pub height: u32,
    pub content_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tag {
    pub label: String,
    #[serde(serialize_with = "shortest_f32")]
    pub score: f32,
}

/// A category of the editor taxonomy (`models/taxonomy.toml`): `top` or `top/sub`, with the summed
/// probability of the model classes it groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Category {
    pub name: String,
    #[serde(serialize_with = "shortest_f32")]
    pub score: f32,
}

/// One line of text read from a picture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextLine {
    pub text: String,
    /// Mean probability of the line's characters, 0..1.
    #[serde(serialize_with = "shortest_f32")]
    pub score: f32,
    /// Where the line is, in pixels of the image that was read (the preview).
    pub bbox: BBox,
}

/// An axis-aligned box in pixels, `(x, y)` its top-left corner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BBox {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageError {
    pub stage: String,
    pub reason: String,
    pub attempts: u32,
}

/// A score as the shortest decimal that reads back as the same `f32` (`0.3838`), not as the
/// `f32` widened to `f64` (`0.3837999999523163`), which is what a JSON value holds once the
/// document goes through `serde_json::Value`, a JSON column or another language. Written as
/// the `f64` nearest that decimal, which every JSON writer prints as the decimal and which reads
/// back into the same `f32`.
fn shortest_f32<S: Serializer>(score: &f32, serializer: S) -> Result<S::Ok, S::Error> {
    let decimal = score.to_string().parse().unwrap_or(f64::from(*score));
    serializer.serialize_f64(decimal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_print_as_the_shortest_decimal_of_the_f32() {
        let tag = Tag {
            label: "tabby".to_owned(),
            score: 0.3838,
        };
        for json in [
            serde_json::to_string(&tag).expect("json"),
            serde_json::to_value(&tag).expect("value").to_string(),
        ] {
            assert!(json.contains("0.3838"), "{json}");
            assert!(!json.contains("0.38379999"), "{json}");
        }
        let category = Category {
            name: "animal/cat".to_owned(),
            score: 0.9001,
        };
        let line = TextLine {
            text: "OPEN".to_owned(),
            score: 0.7,
            bbox: BBox {
                x: 1,
                y: 2,
                width: 3,
                height: 4,
            },
        };
        assert_eq!(
            serde_json::to_value(&category).expect("value").to_string(),
            r#"{"name":"animal/cat","score":0.9001}"#
        );
        assert_eq!(
            serde_json::to_value(&line).expect("value")["score"].to_string(),
            "0.7"
        );
    }

    #[test]
    fn scores_read_back_as_the_same_f32() {
        for score in [0.0f32, 1.0, 0.3838, 1e-4, 0.9999, 0.1, f32::MIN_POSITIVE] {
            let tag = Tag {
                label: "x".to_owned(),
                score,
            };
            let json = serde_json::to_string(&tag).expect("json");
            let back: Tag = serde_json::from_str(&json).expect("parse");
            assert_eq!(back.score.to_bits(), score.to_bits(), "{json}");
            let via_value: Tag =
                serde_json::from_value(serde_json::to_value(&tag).expect("value")).expect("parse");
            assert_eq!(via_value, tag, "{json}");
        }
    }
}
