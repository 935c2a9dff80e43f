//! Prints the top-5 tags of each image given on the command line, one JSON line per image (the
//! same shape as `models/verify.py`, to compare the two preprocessing paths).
//!
//! ```sh
//! cargo run --release -p imgpipe-recognizer --example classify -- tests/photos/*.jpg
//! ```
//! Paths in the default config are relative to the working directory: run from the repo root.

use imgpipe_contract::config::RecognizerConfig;
use imgpipe_recognizer::Classifier;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let classifier = Classifier::load(&RecognizerConfig::default())?;
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path)?;
        match classifier.classify_bytes(&bytes, 5) {
            Ok(tags) => println!(
                "{}",
                serde_json::json!({ "path": path, "top": tags, "model": classifier.model() })
            ),
            Err(e) => println!(
                "{}",
                serde_json::json!({ "path": path, "error": e.to_string() })
            ),
        }
    }
    Ok(())
}
