//! The image classifier: ONNX Runtime sessions created once at start (one per parallel run), fed
//! by a batcher that groups concurrent callers' images into model runs.

use std::path::Path;
use std::time::Duration;

use image::DynamicImage;
use imgpipe_contract::config::{ExecutionProvider, RecognizerConfig};
use imgpipe_contract::document::{Category, ModelInfo, Tag};
use ort::session::Session;
use ort::value::TensorRef;
use serde::Serialize;

use crate::batcher::{BatchStats, Batcher, Model, Ticket};
use crate::error::RecognizerError;
use crate::gate::Gate;
use crate::taxonomy::Taxonomy;
use crate::{preprocess, provider, runtime, scores};

/// What the classifier says about one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recognition {
    /// The top-k labels scoring at least `recognizer.min_score`, best first.
    pub tags: Vec<Tag>,
    /// The editor categories scoring at least `recognizer.category_min_score`, best first.
    pub categories: Vec<Category>,
}

/// What [`Classifier::recognize_bytes`] gives: the picture as decoded and what the model says.
#[derive(Debug, Clone)]
pub struct Recognized {
    /// The picture, upright, at the scale it was decoded at (see
    /// [`Classifier::recognize_bytes`]): what the model input was made from.
    pub image: DynamicImage,
    pub recognition: Recognition,
}

/// An ImageNet classifier (EfficientNet-Lite0 by default) over ONNX Runtime.
///
/// `Send + Sync`: share it behind an `Arc`. Decoding and preprocessing run in each caller's
/// thread, concurrently with other callers; each of `recognizer.parallel_runs` threads owns a
/// session and runs the images queued meanwhile as one batch (up to `recognizer.batch_size`, see
/// [`crate::batcher`]). ONNX Runtime spreads each run over `intra_threads`.
pub struct Classifier {
    batcher: Batcher,
    /// Callers decoding and preprocessing at once: the cores the model leaves free.
    gate: Gate,
    labels: Vec<String>,
    taxonomy: Taxonomy,
    min_score: f32,
    category_min_score: f32,
    model: ModelInfo,
    provider: ExecutionProvider,
    fallback: Option<String>,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("model", &self.model)
            .field("classes", &self.labels.len())
            .field("categories", &self.taxonomy.len())
            .field("batch_size", &self.batcher.max_images())
            .field("preprocessing_at_once", &self.gate.size())
            .field("execution_provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl Classifier {
    /// Loads libonnxruntime (the config's path, overridden by the `ORT_DYLIB_PATH` environment
    /// variable), the model, its labels and the taxonomy, and creates the session on the
    /// configured execution provider (falling back to CPU, with a warning). Relative paths are
    /// relative to the working directory.
    ///
    /// A missing library, model, labels or taxonomy file gives [`RecognizerError::MissingFile`]
    /// naming the path; any other problem with them is also a setup error
    /// ([`RecognizerError::is_setup`]).
    pub fn load(config: &RecognizerConfig) -> Result<Self, RecognizerError> {
        // Every path is checked before the runtime is touched, so a bad config is reported the
        // same way whether or not the library is already loaded in this process. The OCR models
        // are not the classifier's.
        crate::setup::check_setup(&RecognizerConfig {
            ocr: false,
            ..config.clone()
        })?;
        let library = runtime::library_path(&config.onnxruntime);
        let taxonomy_path = Some(config.taxonomy.as_path()).filter(|p| !p.as_os_str().is_empty());
        let labels = read_labels(&config.labels)?;
        let environment = runtime::environment(&library)?;
        let placed = provider::place(&environment, config)?;

        let model_error = |reason: String| RecognizerError::Model {
            path: config.model.clone(),
            reason,
        };
        let signature = check_signature(&placed.session).map_err(model_error)?;
        if let Some(classes) = signature.classes
            && classes != labels.len()
        {
            return Err(RecognizerError::Labels {
                path: config.labels.clone(),
                reason: format!("{} labels for a model with {classes} classes", labels.len()),
            });
        }
        let taxonomy = match taxonomy_path {
            Some(path) => Taxonomy::load(path, &labels)?,
            None => Taxonomy::built_in(&labels)?,
        };
        // A model exported with a fixed batch of 1 still works, one image per run.
        let batch_size = if signature.fixed_batch {
            1
        } else {
            config.batch_size
        };
        let models = sessions(
            &environment,
            config,
            placed.session,
            placed.provider,
            &signature,
        )?;
        let batcher = Batcher::start(
            batch_size,
            Duration::from_millis(config.batch_wait_ms),
            models,
        )?;
        let gate = Gate::new(preprocessing_at_once(config, placed.provider));
        log_loaded(
            config,
            &labels,
            &taxonomy,
            batch_size,
            &gate,
            placed.provider,
        );
        Ok(Classifier {
            batcher,
            gate,
            labels,
            taxonomy,
            min_score: config.min_score,
            category_min_score: config.category_min_score,
            model: ModelInfo {
                name: config.model_name.clone(),
                version: config.model_version.clone(),
            },
            provider: placed.provider,
            fallback: placed.fallback,
        })
    }

    /// The one way to recognize an image, for the bus handler, `imgpipe tag` and the benchmark
    /// alike: decodes `bytes` (JPEG, PNG, WebP, ...; EXIF orientation applied) and makes the model
    /// input in this thread, in turn with the other callers preparing theirs (as many at once as
    /// the model leaves cores free), then classifies it in the next batch, keeping the `top_k`
    /// best tags. Returns the tags and categories with the image as decoded, for whatever else
    /// reads the picture (OCR), so the bytes are decoded once.
    ///
    /// A JPEG is decoded at reduced scale (see [`preprocess::decode_at_least`]): as small as the
    /// model input allows, or with its longer side at least `min_long` (0 for classification
    /// only).
    ///
    /// Blocks until the batch has run: call it from a thread that may block. Bytes that do not
    /// decode give [`RecognizerError::Decode`] without holding up the batch.
    pub fn recognize_bytes(
        &self,
        bytes: &[u8],
        min_long: u32,
        top_k: usize,
    ) -> Result<Recognized, RecognizerError> {
        // Announced before queuing at the gate, so a batch forming meanwhile waits for this
        // image (at most `batch_wait_ms`) rather than running without it. Dropped unused when
        // the image fails, which tells the batch not to wait.
        let ticket = self.batcher.reserve();
        let (image, input) = {
            let _turn = self.gate.enter();
            let image = preprocess::decode_at_least(bytes, preprocess::RESIZE_SHORTER, min_long)?;
            let input = preprocess::tensor(&image)?;
            (image, input)
        };
        let recognition = self.run(ticket, input, top_k)?;
        Ok(Recognized { image, recognition })
    }

    /// The second half of [`Classifier::recognize_bytes`] on a model input made beforehand by
    /// [`preprocess::tensor`]: the batcher and the model only, which is what the benchmark
    /// compares with the Python runtime. Not part of the API (feature `bench`, which only
    /// the crate's own benchmark and tests turn on).
    #[cfg(feature = "bench")]
    #[doc(hidden)]
    pub fn recognize_tensor(
        &self,
        input: Vec<f32>,
        top_k: usize,
    ) -> Result<Recognition, RecognizerError> {
        if input.len() != preprocess::IMAGE_VALUES {
            return Err(RecognizerError::InvalidImage(format!(
                "a model input has {} values, not {}",
                preprocess::IMAGE_VALUES,
                input.len()
            )));
        }
        self.run(self.batcher.reserve(), input, top_k)
    }

    /// Name and version of the model, as recorded with the tags.
    pub fn model(&self) -> ModelInfo {
        self.model.clone()
    }

    /// Where the model runs: the configured provider, or CPU after a fallback.
    pub fn execution_provider(&self) -> ExecutionProvider {
        self.provider
    }

    /// Why the configured execution provider is not the one running, if it is not.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// The most images one model run takes.
    pub fn batch_size(&self) -> usize {
        self.batcher.max_images()
    }

    /// How many model runs there were so far, and how many images they held.
    pub fn batch_stats(&self) -> BatchStats {
        self.batcher.stats()
    }

    /// Queues one image's model input with its place in the batch and interprets its logits.
    fn run(
        &self,
        ticket: Ticket<'_>,
        input: Vec<f32>,
        top_k: usize,
    ) -> Result<Recognition, RecognizerError> {
        let logits = ticket.run(input, 1)?;
        self.interpret(&logits, top_k)
    }

    /// One image's logits to its tags and categories.
    fn interpret(&self, logits: &[f32], top_k: usize) -> Result<Recognition, RecognizerError> {
        if logits.len() != self.labels.len() {
            return Err(RecognizerError::Inference(format!(
                "model returned {} values for {} classes",
                logits.len(),
                self.labels.len()
            )));
        }
        let probabilities = scores::softmax(logits);
        Ok(Recognition {
            tags: scores::top_k(&probabilities, &self.labels, top_k, self.min_score),
            categories: self
                .taxonomy
                .categorize(&probabilities, self.category_min_score),
        })
    }
}

/// How many callers may decode and preprocess at once: the cores the model's threads leave
/// free, or every core when they leave none ([`Gate::spare_cores`]). A model on a GPU leaves
/// them all; ONNX Runtime's default thread count (`intra_threads` 0) is one per core.
fn preprocessing_at_once(config: &RecognizerConfig, provider: ExecutionProvider) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let model_threads = match provider {
        ExecutionProvider::Cpu if config.intra_threads == 0 => cores,
        ExecutionProvider::Cpu => config.parallel_runs * config.intra_threads,
        ExecutionProvider::Cuda | ExecutionProvider::Tensorrt => 0,
    };
    Gate::spare_cores(cores, model_threads)
}

/// The batcher's model run: `[N, 3, 224, 224]` stacked inputs to `[N, classes]` logits.
fn run_model(mut session: Session, input: String, output: String) -> Model {
    Box::new(move |values: &[f32], images: usize| {
        let side = preprocess::CROP as usize;
        let tensor = TensorRef::from_array_view(([images, 3, side, side], values))
            .map_err(|e| e.to_string())?;
        let outputs = session
            .run(ort::inputs![input.as_str() => tensor])
            .map_err(|e| e.to_string())?;
        let logits = outputs
            .get(&output)
            .ok_or_else(|| format!("model produced no `{output}` output"))?;
        let (_, values) = logits
            .try_extract_tensor::<f32>()
            .map_err(|e| e.to_string())?;
        Ok(values.to_vec())
    })
}

/// One class name per line, trimmed; line `i` names output `i`.
/// The model's sessions: the one placed first and, for runs side by side, more on the provider
/// it landed on.
fn sessions(
    environment: &ort::environment::Environment,
    config: &RecognizerConfig,
    first: Session,
    provider: ExecutionProvider,
    signature: &Signature,
) -> Result<Vec<Model>, RecognizerError> {
    let mut models = vec![run_model(
        first,
        signature.input.clone(),
        signature.output.clone(),
    )];
    for _ in 1..config.parallel_runs {
        let session = provider::session_on(environment, config, provider)?;
        models.push(run_model(
            session,
            signature.input.clone(),
            signature.output.clone(),
        ));
    }
    Ok(models)
}

fn log_loaded(
    config: &RecognizerConfig,
    labels: &[String],
    taxonomy: &Taxonomy,
    batch_size: usize,
    gate: &Gate,
    provider: ExecutionProvider,
) {
    tracing::info!(
        model = %config.model.display(),
        name = %config.model_name,
        version = %config.model_version,
        classes = labels.len(),
        categories = taxonomy.len(),
        intra_threads = config.intra_threads,
        parallel_runs = config.parallel_runs,
        batch_size,
        batch_wait_ms = config.batch_wait_ms,
        preprocessing_at_once = gate.size(),
        execution_provider = provider.as_str(),
        "loaded classifier"
    );
}

fn read_labels(path: &Path) -> Result<Vec<String>, RecognizerError> {
    let text = std::fs::read_to_string(path).map_err(|e| RecognizerError::Labels {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let labels: Vec<String> = text.lines().map(|l| l.trim().to_owned()).collect();
    if labels.is_empty() || labels.iter().any(String::is_empty) {
        return Err(RecognizerError::Labels {
            path: path.to_owned(),
            reason: "empty file or blank line".to_owned(),
        });
    }
    Ok(labels)
}

/// What the classifier needs to know of the model's inputs and outputs.
struct Signature {
    input: String,
    output: String,
    /// Number of classes, when the model declares it.
    classes: Option<usize>,
    /// The batch dimension is fixed at 1 instead of dynamic.
    fixed_batch: bool,
}

/// The model must take one f32 image tensor `[N, 3, 224, 224]` (N dynamic, or 1) and give f32
/// logits.
fn check_signature(session: &Session) -> Result<Signature, String> {
    let [input] = session.inputs() else {
        return Err(format!(
            "expected one input, found {}",
            session.inputs().len()
        ));
    };
    let Some(output) = session.outputs().first() else {
        return Err("model has no outputs".to_owned());
    };
    let input_shape = input.dtype().tensor_shape().map(|s| s.to_vec());
    let expected = [
        -1,
        3,
        i64::from(preprocess::CROP),
        i64::from(preprocess::CROP),
    ];
    let fits = input_shape.as_deref().is_some_and(|shape| {
        shape.len() == 4
            && (shape[0] < 0 || shape[0] == 1)
            && shape
                .iter()
                .zip(expected)
                .skip(1)
                .all(|(&got, want)| got == want || got < 0)
    });
    if !fits {
        return Err(format!(
            "input `{}` has shape {input_shape:?}, expected [N, 3, 224, 224] with N dynamic (or 1)",
            input.name()
        ));
    }
    let classes = output
        .dtype()
        .tensor_shape()
        .and_then(|s| s.last().copied())
        .and_then(|c| usize::try_from(c).ok());
    Ok(Signature {
        input: input.name().to_owned(),
        output: output.name().to_owned(),
        classes,
        fixed_batch: input_shape.is_some_and(|s| s[0] == 1),
    })
}
