//! CPU or GPU: asking for CUDA or TensorRT where the library or the GPU is missing (this
//! machine: the CPU-only `onnxruntime` wheel, no GPU) still gives a working classifier on the
//! CPU, and says so, in its log and through [`Classifier::fallback_reason`].

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{CAT_CLASSES, config, labels, photo, recognize};
use imgpipe_contract::config::ExecutionProvider;
use imgpipe_recognizer::Classifier;

/// Log lines written while `f` runs on this thread.
fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let buffer = buffer.clone();
            move || buffer.clone()
        })
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&buffer.0.lock().expect("lock")).into_owned();
    (out, text)
}

fn load_on(provider: ExecutionProvider) -> (Classifier, String) {
    let (classifier, log) = logged(|| {
        Classifier::load(&imgpipe_contract::config::RecognizerConfig {
            execution_provider: provider,
            ..config()
        })
    });
    (classifier.expect("falls back instead of failing"), log)
}

fn assert_still_classifies(classifier: &Classifier) {
    let recognition = recognize(classifier, &photo("chelsea.jpg"), 5).expect("classify");
    let names = labels(&recognition.tags);
    assert!(
        names.iter().any(|l| CAT_CLASSES.contains(l)),
        "no cat class in {names:?}"
    );
}

#[test]
fn cuda_without_a_gpu_falls_back_to_cpu_and_says_so() {
    let (classifier, log) = load_on(ExecutionProvider::Cuda);
    eprintln!("{log}");
    assert_eq!(classifier.execution_provider(), ExecutionProvider::Cpu);
    let reason = classifier.fallback_reason().expect("a reason");
    assert!(reason.contains("cuda"), "{reason}");
    assert!(
        log.contains("WARN") && log.contains("falling back to CPU") && log.contains("cuda"),
        "no warning in the log:\n{log}"
    );
    assert!(log.contains("execution_provider=\"cpu\""), "{log}");
    assert_still_classifies(&classifier);
}

#[test]
fn tensorrt_tries_cuda_then_falls_back_to_cpu() {
    let (classifier, log) = load_on(ExecutionProvider::Tensorrt);
    assert_eq!(classifier.execution_provider(), ExecutionProvider::Cpu);
    let reason = classifier.fallback_reason().expect("a reason");
    assert!(
        reason.contains("tensorrt") && reason.contains("cuda"),
        "{reason}"
    );
    assert!(log.contains("falling back to CPU"), "{log}");
    assert_still_classifies(&classifier);
}

#[test]
fn cpu_is_the_default_and_needs_no_fallback() {
    let (classifier, log) = load_on(ExecutionProvider::Cpu);
    assert_eq!(
        imgpipe_contract::config::RecognizerConfig::default().execution_provider,
        ExecutionProvider::Cpu
    );
    assert_eq!(classifier.execution_provider(), ExecutionProvider::Cpu);
    assert_eq!(classifier.fallback_reason(), None);
    assert!(!log.contains("WARN"), "{log}");
    assert_still_classifies(&classifier);
}
