//! Times `Renderer::render` on the files given (default: `tests/photos/china.jpg`), with the
//! production defaults. Build with `--release` for meaningful figures:
//!
//! ```sh
//! cargo run --release -p imgpipe-resizer --example render_bench -- photo.jpg [more.png ...]
//! ```

use std::path::PathBuf;
use std::time::Instant;

use imgpipe_contract::config::ResizerConfig;
use imgpipe_resizer::Renderer;

const ROUNDS: u32 = 10;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if paths.is_empty() {
        paths.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/photos/china.jpg"));
    }
    let renderer = Renderer::new(&ResizerConfig::default());
    for path in paths {
        let bytes = std::fs::read(&path)?;
        let first = renderer.render(&bytes)?; // warm-up, and the dimensions for the report
        let started = Instant::now();
        for _ in 0..ROUNDS {
            renderer.render(&bytes)?;
        }
        let per_image = started.elapsed().as_secs_f64() * 1000.0 / f64::from(ROUNDS);
        println!(
            "{}: {} {}x{} ({} bytes) -> thumb {}x{}, preview {}x{}: {per_image:.1} ms/image",
            path.display(),
            first.format,
            first.width,
            first.height,
            bytes.len(),
            first.thumb.width,
            first.thumb.height,
            first.preview.width,
            first.preview.height,
        );
    }
    Ok(())
}
