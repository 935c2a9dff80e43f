//! Creating the classifier's ONNX Runtime session on the configured execution provider: CPU, or
//! CUDA / TensorRT when the loaded library has them (the `onnxruntime-gpu` build) and a GPU
//! answers. A GPU provider that cannot start is not fatal: the session is created on the CPU
//! instead and a warning says why, so a recognizer scheduled on a node without a working GPU
//! still tags images.

use imgpipe_contract::config::{ExecutionProvider, RecognizerConfig};
use ort::environment::Environment;
use ort::ep::{self, ExecutionProvider as _, ExecutionProviderDispatch};
use ort::session::Session;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};

use crate::error::RecognizerError;
use crate::preprocess::CROP;

/// The session and where it runs.
pub(crate) struct Placed {
    pub session: Session,
    pub provider: ExecutionProvider,
    /// Why the configured provider is not the one running, if it is not.
    pub fallback: Option<String>,
}

/// Creates the session on `config.execution_provider`, falling back to CPU (TensorRT first
/// falls back to CUDA).
pub(crate) fn place(
    environment: &Environment,
    config: &RecognizerConfig,
) -> Result<Placed, RecognizerError> {
    let model_error = |reason: String| RecognizerError::Model {
        path: config.model.clone(),
        reason,
    };
    let attempts: &[ExecutionProvider] = match config.execution_provider {
        ExecutionProvider::Cpu => &[],
        ExecutionProvider::Cuda => &[ExecutionProvider::Cuda],
        ExecutionProvider::Tensorrt => &[ExecutionProvider::Tensorrt, ExecutionProvider::Cuda],
    };
    let mut reasons = Vec::new();
    for &provider in attempts {
        match on_gpu(environment, config, provider) {
            Ok(session) => {
                let fallback = (!reasons.is_empty()).then(|| reasons.join("; "));
                if let Some(reason) = &fallback {
                    tracing::warn!(
                        requested = config.execution_provider.as_str(),
                        running = provider.as_str(),
                        %reason,
                        "execution provider unavailable, using the next one"
                    );
                }
                return Ok(Placed {
                    session,
                    provider,
                    fallback,
                });
            }
            Err(reason) => reasons.push(format!("{}: {reason}", provider.as_str())),
        }
    }
    let session = builder(environment, config)
        .and_then(|mut b| b.commit_from_file(&config.model).map_err(|e| e.to_string()))
        .map_err(model_error)?;
    let fallback = (!reasons.is_empty()).then(|| reasons.join("; "));
    if let Some(reason) = &fallback {
        tracing::warn!(
            requested = config.execution_provider.as_str(),
            running = "cpu",
            %reason,
            "GPU execution provider unavailable, falling back to CPU"
        );
    }
    Ok(Placed {
        session,
        provider: ExecutionProvider::Cpu,
        fallback,
    })
}

/// One more session on `provider`, the one [`place`] settled on (so no fallback here: it worked
/// a moment ago).
pub(crate) fn session_on(
    environment: &Environment,
    config: &RecognizerConfig,
    provider: ExecutionProvider,
) -> Result<Session, RecognizerError> {
    let session = match provider {
        ExecutionProvider::Cpu => builder(environment, config)
            .and_then(|mut b| b.commit_from_file(&config.model).map_err(|e| e.to_string())),
        gpu => on_gpu(environment, config, gpu),
    };
    session.map_err(|reason| RecognizerError::Model {
        path: config.model.clone(),
        reason,
    })
}

/// The options every session gets, whatever it runs on.
fn builder(environment: &Environment, config: &RecognizerConfig) -> Result<SessionBuilder, String> {
    let mut builder = Session::builder(environment)
        // All graph optimisations, as the Python package does by default.
        .and_then(|b| {
            b.with_optimization_level(GraphOptimizationLevel::All)
                .map_err(Into::into)
        })
        .and_then(|b| b.with_inter_threads(1).map_err(Into::into))
        // Spinning idle ORT workers would burn the cores the callers' preprocessing (and the
        // resizer) need. Measured here: spinning speeds up bare batch-1 runs, not the stage.
        .and_then(|b| b.with_intra_op_spinning(false).map_err(Into::into))
        .map_err(|e| e.to_string())?;
    if config.intra_threads > 0 {
        builder = builder
            .with_intra_threads(config.intra_threads)
            .map_err(|e| e.to_string())?;
    }
    Ok(builder)
}

/// A session on `provider`, or why not.
fn on_gpu(
    environment: &Environment,
    config: &RecognizerConfig,
    provider: ExecutionProvider,
) -> Result<Session, String> {
    let (name, available, dispatch) = match provider {
        ExecutionProvider::Cuda => ("CUDA", ep::CUDA::is_available(), cuda()),
        ExecutionProvider::Tensorrt => (
            "TensorRT",
            ep::TensorRT::is_available(),
            tensorrt(config.batch_size),
        ),
        ExecutionProvider::Cpu => return Err("not a GPU provider".to_owned()),
    };
    match available {
        Ok(true) => {}
        Ok(false) => {
            return Err(format!(
                "this ONNX Runtime library was built without {name} (the CPU-only `onnxruntime` \
                 package; install `onnxruntime-gpu` and point recognizer.onnxruntime or \
                 ORT_DYLIB_PATH at its library)"
            ));
        }
        Err(e) => return Err(e.to_string()),
    }
    let mut providers = vec![dispatch];
    if provider == ExecutionProvider::Tensorrt {
        // What TensorRT does not take runs on CUDA rather than the CPU.
        providers.push(cuda());
    }
    let mut builder = builder(environment, config)?
        .with_execution_providers(providers)
        .map_err(|e| e.to_string())?;
    // A provider can register yet fail when the session places the graph (no device, missing
    // cuDNN): that shows here.
    builder
        .commit_from_file(&config.model)
        .map_err(|e| e.to_string())
}

fn cuda() -> ExecutionProviderDispatch {
    ep::CUDA::default().build().error_on_failure()
}

fn tensorrt(batch_size: usize) -> ExecutionProviderDispatch {
    // Engines are built for batches of 1 to `batch_size` once, then cached across restarts. The
    // profile names the model's input, `input` (see models/README.md).
    let shape = |n: usize| format!("input:{n}x3x{CROP}x{CROP}");
    ep::TensorRT::default()
        .with_engine_cache(true)
        .with_engine_cache_path(
            std::env::temp_dir()
                .join("imgpipe-tensorrt-cache")
                .display(),
        )
        .with_profile_min_shapes(shape(1))
        .with_profile_opt_shapes(shape(batch_size))
        .with_profile_max_shapes(shape(batch_size))
        .build()
        .error_on_failure()
}
