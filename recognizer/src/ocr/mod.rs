//! Text in pictures: PP-OCR detection and recognition models (from the PyPI package `rapidocr`,
//! see `models/README.md`) over ONNX Runtime.
//!
//! [`Ocr::read`] finds text lines in a decoded image ([`det`]: DB probability map, regions,
//! minimum-area rectangles), cuts each out upright and reads it ([`rec`], [`ctc`]). Lines come
//! back top to bottom, then left to right.

mod bitmap;
mod ctc;
mod det;
mod geometry;
mod rec;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use fast_image_resize::Resizer;
use image::{DynamicImage, RgbImage};
use imgpipe_contract::config::RecognizerConfig;
pub use imgpipe_contract::document::{BBox, TextLine};
use ndarray::Array4;
use ort::session::Session;
use ort::value::TensorRef;

use crate::error::RecognizerError;
use crate::runtime;
use ctc::Charset;

/// The metadata key of the recognition model that lists its characters, one per line.
const CHARACTER_KEY: &str = "character";

/// PP-OCR text detection + recognition over ONNX Runtime.
///
/// `Send + Sync`: share it behind an `Arc`. Each model has one session, locked only while it
/// runs, so one image's detection can overlap another's recognition.
pub struct Ocr {
    det: Model,
    rec: Model,
    charset: Charset,
    min_score: f32,
}

impl std::fmt::Debug for Ocr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ocr")
            .field("det", &self.det.path)
            .field("rec", &self.rec.path)
            .field("classes", &self.charset.classes())
            .field("min_score", &self.min_score)
            .finish_non_exhaustive()
    }
}

impl Ocr {
    /// The detector reads images at most this many pixels on their longer side; larger ones are
    /// scaled down first.
    pub const MAX_SIDE: u32 = det::MAX_SIDE;

    /// Loads libonnxruntime (as [`crate::Classifier::load`] does: the config's path, or
    /// `ORT_DYLIB_PATH`) and the two models named by `ocr_det_model` and `ocr_rec_model`,
    /// whatever `config.ocr` says (see [`Ocr::from_config`]). Relative paths are relative to the
    /// working directory.
    ///
    /// A missing file gives [`RecognizerError::MissingFile`]; a model ONNX Runtime refuses, or a
    /// recognition model without its character list, gives [`RecognizerError::Model`].
    pub fn load(config: &RecognizerConfig) -> Result<Self, RecognizerError> {
        let library = runtime::library_path(&config.onnxruntime);
        for (what, path) in [
            ("ONNX Runtime library", library.as_path()),
            ("OCR detection model", config.ocr_det_model.as_path()),
            ("OCR recognition model", config.ocr_rec_model.as_path()),
        ] {
            if !path.is_file() {
                return Err(RecognizerError::MissingFile {
                    what,
                    path: path.to_owned(),
                });
            }
        }
        let environment = runtime::environment(&library)?;
        // One session per model, so each gets every inference thread the classifier has.
        let threads = config.intra_threads * config.parallel_runs;
        let det = Model::load(&environment, &config.ocr_det_model, threads)?;
        let rec = Model::load(&environment, &config.ocr_rec_model, threads)?;
        let charset = rec.charset()?;
        tracing::info!(
            det = %config.ocr_det_model.display(),
            rec = %config.ocr_rec_model.display(),
            classes = charset.classes(),
            "loaded OCR models"
        );
        Ok(Ocr {
            det,
            rec,
            charset,
            min_score: config.ocr_min_score,
        })
    }

    /// [`Ocr::load`] when `config.ocr` is on, else `None` (and no file is looked at).
    pub fn from_config(config: &RecognizerConfig) -> Result<Option<Self>, RecognizerError> {
        config.ocr.then(|| Ocr::load(config)).transpose()
    }

    /// The text lines in `image` whose score is at least the configured `ocr_min_score`, top to
    /// bottom, then left to right. Boxes are in `image`'s pixels. Give it the preview: the
    /// detector works at 960 px at most, so larger images only cost time.
    pub fn read(&self, image: &DynamicImage) -> Result<Vec<TextLine>, RecognizerError> {
        let (width, height) = (image.width(), image.height());
        if width == 0 || height == 0 {
            return Err(RecognizerError::InvalidImage(format!(
                "image is {width}x{height}"
            )));
        }
        let rgb: Cow<'_, RgbImage> = match image {
            DynamicImage::ImageRgb8(rgb) => Cow::Borrowed(rgb),
            other => Cow::Owned(other.to_rgb8()),
        };
        let mut resizer = Resizer::new();

        let input = det::tensor(&rgb, &mut resizer)?;
        let (map_h, map_w) = (input.shape()[2], input.shape()[3]);
        let (_, prob) = self.det.run(&input)?;
        if prob.len() != map_w * map_h {
            return Err(RecognizerError::Inference(format!(
                "detection map has {} values for a {map_w}x{map_h} input",
                prob.len()
            )));
        }
        let boxes = det::boxes(&prob, map_w, map_h, width, height);

        let mut lines = Vec::with_capacity(boxes.len());
        for quad in &boxes {
            if let Some(crop) = rec::crop(&rgb, quad) {
                lines.push((quad, rec::to_line(&crop, &mut resizer)?));
            }
        }
        lines.sort_by_key(|(_, line)| line.width());

        let mut read = Vec::with_capacity(lines.len());
        for batch in lines.chunks(rec::BATCH) {
            let images: Vec<&RgbImage> = batch.iter().map(|(_, line)| line).collect();
            let (shape, probs) = self.rec.run(&rec::tensor(&images))?;
            let classes = self.charset.classes();
            if shape.len() != 3 || shape[0] != batch.len() || shape[2] != classes {
                return Err(RecognizerError::Inference(format!(
                    "recognition output has shape {shape:?}, expected [{}, steps, {classes}]",
                    batch.len()
                )));
            }
            for ((quad, _), row) in batch.iter().zip(probs.chunks_exact(shape[1] * classes)) {
                let (text, score) = self.charset.decode(row);
                let text = text.trim();
                if !text.is_empty() && score >= self.min_score {
                    read.push(TextLine {
                        text: text.to_owned(),
                        score,
                        bbox: bbox(quad),
                    });
                }
            }
        }
        sort_reading_order(&mut read);
        Ok(read)
    }
}

/// One ONNX model with a single image input and a single output.
struct Model {
    /// `Session::run` needs `&mut`; the lock is held only for the run itself.
    session: Mutex<Session>,
    input: String,
    output: String,
    path: PathBuf,
}

impl Model {
    fn load(
        environment: &ort::environment::Environment,
        path: &Path,
        intra_threads: usize,
    ) -> Result<Self, RecognizerError> {
        let error = |reason: String| RecognizerError::Model {
            path: path.to_owned(),
            reason,
        };
        let mut builder = Session::builder(environment)
            .and_then(|b| b.with_inter_threads(1).map_err(Into::into))
            // As for the classifier: idle workers would otherwise spin on shared cores.
            .and_then(|b| b.with_intra_op_spinning(false).map_err(Into::into))
            .map_err(|e| error(e.to_string()))?;
        if intra_threads > 0 {
            builder = builder
                .with_intra_threads(intra_threads)
                .map_err(|e| error(e.to_string()))?;
        }
        let session = builder
            .commit_from_file(path)
            .map_err(|e| error(e.to_string()))?;
        let (input, output) = match (session.inputs(), session.outputs()) {
            ([input], [output, ..]) => (input.name().to_owned(), output.name().to_owned()),
            (inputs, _) => {
                return Err(error(format!(
                    "expected one image input, found {}",
                    inputs.len()
                )));
            }
        };
        Ok(Model {
            session: Mutex::new(session),
            input,
            output,
            path: path.to_owned(),
        })
    }

    /// The recognition model's characters, from its metadata, checked against its output.
    fn charset(&self) -> Result<Charset, RecognizerError> {
        let error = |reason: String| RecognizerError::Model {
            path: self.path.clone(),
            reason,
        };
        let session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        let metadata = session.metadata().map_err(|e| error(e.to_string()))?;
        let list = metadata.custom(CHARACTER_KEY).ok_or_else(|| {
            error(format!(
                "no `{CHARACTER_KEY}` metadata: not a PP-OCR recognition model from rapidocr"
            ))
        })?;
        let charset = Charset::from_metadata(&list).map_err(error)?;
        let declared = session
            .outputs()
            .first()
            .and_then(|o| o.dtype().tensor_shape())
            .and_then(|s| s.last().copied())
            .and_then(|c| usize::try_from(c).ok());
        match declared {
            Some(classes) if classes != charset.classes() => Err(error(format!(
                "{} characters in the metadata (+ blank and space) for a model with {classes} classes",
                charset.classes() - 2
            ))),
            _ => Ok(charset),
        }
    }

    /// Runs the model on `input`; returns the output's shape and values.
    fn run(&self, input: &Array4<f32>) -> Result<(Vec<usize>, Vec<f32>), RecognizerError> {
        let inference = |e: ort::Error| RecognizerError::Inference(e.to_string());
        let tensor = TensorRef::from_array_view(input).map_err(inference)?;
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        let outputs = session
            .run(ort::inputs![self.input.as_str() => tensor])
            .map_err(inference)?;
        let output = outputs.get(&self.output).ok_or_else(|| {
            RecognizerError::Inference(format!("model produced no `{}` output", self.output))
        })?;
        let (shape, values) = output.try_extract_tensor::<f32>().map_err(inference)?;
        let shape = shape
            .iter()
            .map(|&d| usize::try_from(d).unwrap_or(0))
            .collect();
        Ok((shape, values.to_vec()))
    }
}

/// The axis-aligned box around `quad`, in whole pixels.
fn bbox(quad: &geometry::Quad) -> BBox {
    let (x0, y0, x1, y1) = quad.bounds();
    let (x, y) = (x0.floor().max(0.0) as u32, y0.floor().max(0.0) as u32);
    BBox {
        x,
        y,
        width: (x1.ceil() as u32).saturating_sub(x),
        height: (y1.ceil() as u32).saturating_sub(y),
    }
}

/// Top to bottom, then left to right: lines whose tops are within half a line height of the
/// first line of a row count as that row.
fn sort_reading_order(lines: &mut [TextLine]) {
    lines.sort_by_key(|l| (l.bbox.y, l.bbox.x));
    let mut start = 0;
    while start < lines.len() {
        let first = lines[start].bbox;
        let end = lines[start..]
            .iter()
            .position(|l| l.bbox.y - first.y > first.height / 2)
            .map_or(lines.len(), |n| start + n);
        lines[start..end].sort_by_key(|l| l.bbox.x);
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str, x: u32, y: u32) -> TextLine {
        TextLine {
            text: text.to_owned(),
            score: 1.0,
            bbox: BBox {
                x,
                y,
                width: 50,
                height: 20,
            },
        }
    }

    #[test]
    fn reading_order_groups_rows() {
        let mut lines = vec![
            line("d", 0, 60),
            line("b", 100, 2),
            line("a", 0, 8),
            line("c", 200, 0),
            line("e", 90, 55),
        ];
        sort_reading_order(&mut lines);
        let order: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(order, ["a", "b", "c", "d", "e"]);
    }

    #[test]
    fn ocr_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Ocr>();
    }
}
