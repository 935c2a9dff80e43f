//! Loading ONNX Runtime once per process.
//!
//! `ort` allows one library and one environment per process: a second `init_from` is silently a
//! no-op and a second environment fails to build. So the environment lives in a process-wide slot
//! and every [`crate::Classifier`] shares it. Paths are validated on every call, even when the
//! runtime is already loaded, so a misconfigured path is reported the same way whether or not
//! another classifier loaded the library first.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::environment::Environment;

use crate::error::RecognizerError;

/// The loaded environment and the library it came from. A `Mutex<Option<_>>` rather than a
/// `OnceLock` so a failed load (bad path) leaves the slot empty for a later, correct attempt.
static ENVIRONMENT: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);

/// The environment variable that overrides the configured library path (the one `ort` reads).
pub const ORT_DYLIB_PATH: &str = "ORT_DYLIB_PATH";

/// The library to load: `ORT_DYLIB_PATH` if set and non-empty, else the configured path.
pub(crate) fn library_path(configured: &Path) -> PathBuf {
    match std::env::var_os(ORT_DYLIB_PATH) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => configured.to_owned(),
    }
}

/// Returns the process's ONNX Runtime environment, loading `library` the first time.
pub(crate) fn environment(library: &Path) -> Result<Environment, RecognizerError> {
    // Checked before anything else: `ort` panics on a library it cannot find when it has to
    // fall back to its own lookup, and a check here is observable even after a first load.
    if !library.is_file() {
        return Err(RecognizerError::MissingFile {
            what: "ONNX Runtime library",
            path: library.to_owned(),
        });
    }
    // `ort` resolves relative paths against the executable's directory first; make them absolute
    // against the working directory so the path means what the config says.
    let library = std::fs::canonicalize(library).map_err(|e| RecognizerError::Runtime {
        path: library.to_owned(),
        reason: e.to_string(),
    })?;

    let mut slot = ENVIRONMENT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((loaded, environment)) = slot.as_ref() {
        if *loaded != library {
            tracing::warn!(
                loaded = %loaded.display(),
                requested = %library.display(),
                "ONNX Runtime is already loaded in this process; keeping the first library"
            );
        }
        return Ok(environment.clone());
    }

    let runtime_error = |reason: String| RecognizerError::Runtime {
        path: library.clone(),
        reason,
    };
    let environment = ort::init_from(&library)
        .map_err(|e| runtime_error(e.to_string()))?
        .with_name("imgpipe-recognizer")
        .with_telemetry(false)
        .build()
        .map_err(|e| runtime_error(e.to_string()))?;
    tracing::info!(library = %library.display(), "loaded ONNX Runtime");
    *slot = Some((library, environment.clone()));
    Ok(environment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_library_is_an_error_not_a_panic() {
        let path = Path::new("/nonexistent/libonnxruntime.so");
        let err = environment(path).expect_err("missing library");
        assert!(
            matches!(&err, RecognizerError::MissingFile { path: p, .. } if p == path),
            "{err:?}"
        );
        assert!(err.to_string().contains("bash scripts/setup.sh"), "{err}");
    }
}
