//! Where the recognizer's models are: one models directory, configured or found.

use std::path::{Path, PathBuf};

use super::RecognizerConfig;

/// Where [`RecognizerConfig::resolve_paths`] looks for the models directory when
/// `recognizer.models_dir` is empty. [`ModelsSearch::from_process`] in the binary; tests make
/// their own.
#[derive(Debug, Clone)]
pub struct ModelsSearch {
    /// The working directory: relative settings are relative to it, and `./models` is tried
    /// first.
    pub current_dir: PathBuf,
    /// The running binary: a `models/` folder in its directory or any parent is tried next.
    pub executable: Option<PathBuf>,
}

impl ModelsSearch {
    /// This process's working directory and executable.
    pub fn from_process() -> Self {
        ModelsSearch {
            current_dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            executable: std::env::current_exe().ok(),
        }
    }
}

impl RecognizerConfig {
    /// Settles `models_dir` (made absolute; searched for when empty, see its doc) and puts it in
    /// front of every relative model path (`model`, `labels`, `onnxruntime`, `ocr_det_model`,
    /// `ocr_rec_model`); absolute paths stay as they are. Only fills in paths: whether the files
    /// exist is for the recognizer to check (`imgpipe_recognizer::check_setup`). Idempotent.
    pub fn resolve_paths(&mut self, search: &ModelsSearch) {
        let dir = if self.models_dir.as_os_str().is_empty() {
            self.find_models_dir(search)
        } else {
            // `components` drops the `.` of `./models`.
            search
                .current_dir
                .join(&self.models_dir)
                .components()
                .collect()
        };
        for path in [
            &mut self.model,
            &mut self.labels,
            &mut self.onnxruntime,
            &mut self.ocr_det_model,
            &mut self.ocr_rec_model,
        ] {
            if path.is_relative() && !path.as_os_str().is_empty() {
                *path = dir.join(&*path);
            }
        }
        self.models_dir = dir;
    }

    /// `./models` if it holds the runtime library (or the model), else the first `models/`
    /// holding them beside the binary or in a parent of its directory, else `./models` (which
    /// the set-up check then reports).
    fn find_models_dir(&self, search: &ModelsSearch) -> PathBuf {
        let local = search.current_dir.join("models");
        let beside_binary = search
            .executable
            .iter()
            .filter_map(|exe| exe.parent())
            .flat_map(Path::ancestors)
            .map(|dir| dir.join("models"));
        std::iter::once(local.clone())
            .chain(beside_binary)
            .find(|dir| self.holds_models(dir))
            .unwrap_or(local)
    }

    fn holds_models(&self, dir: &Path) -> bool {
        [&self.onnxruntime, &self.model]
            .into_iter()
            .any(|file| file.is_relative() && dir.join(file).is_file())
    }
}
