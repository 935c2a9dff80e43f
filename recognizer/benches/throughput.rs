//! Images per second through the recognizer stage on 1280 px JPEG previews, at batch 1, 8 and
//! 32, beside the Python `onnxruntime` package running the same ONNX file with the same thread
//! count on the same inputs, model only (recognizer/benches/ort_peer.py).
//!
//! ```sh
//! bash scripts/setup.sh   # model, runtime, photos, .venv with onnxruntime
//! cargo bench -p imgpipe-recognizer --bench throughput \
//!     [-- --seconds 5 --rounds 3 --batches 1,8,32 --callers N --parallel-runs N --intra-threads N]
//! ```
//!
//! Ours: callers (twice the batch size, as `recognizer.concurrency` is by default) each take the
//! next preview's JPEG bytes through `Classifier::recognize_bytes`, the path the recognizer
//! stage and `imgpipe tag` take: decode, resize to the model input and normalise in their own
//! thread, then the classifier's batcher; the count is of images whose tags and categories came
//! back. Ours, model only: the same callers hand in the tensors made beforehand (what the Python
//! side runs) through the second half of that path (`recognize_tensor`, behind the crate's
//! `bench` feature, which its dev-dependency on itself turns on), so the difference between the
//! two columns is the preprocessing. Python: the tensors our preprocessing made from the same previews, stacked
//! into batches beforehand, timed around `session.run` only. Both use the same number of
//! inference threads: ours `recognizer.parallel_runs` (2) sessions running side by side with
//! `recognizer.intra_threads` (1) each, as the recognizer runs by default; Python one session
//! with that total (2) as intra-op threads, as its users run it (`--parallel-runs` and
//! `--intra-threads` change ours; Python always gets their product). Each batch size is measured in
//! rounds that
//! alternate between the two sides (a busy moment then hurts both), and medians are compared.
//!
//! The previews are the real photos of tests/photos scaled to 1280 px on their longer side
//! (Lanczos3, as the resizer does; the photos are smaller, and the resizer never upscales) and
//! rendered by the resizer's own code at its default JPEG quality, cached in
//! target/tmp/recognizer-bench/. Run it on an idle machine: it prints the load average before
//! and after.

use std::io::{BufRead, BufReader, Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{ImageFormat, RgbImage};
use imgpipe_contract::config::{RecognizerConfig, ResizerConfig};
use imgpipe_recognizer::{Classifier, preprocess};
use imgpipe_resizer::Renderer;

type Error = Box<dyn std::error::Error>;

/// The distinct real photos (the hopper orientation variants and the JPEG copies of PNGs would
/// only repeat these).
const PHOTOS: &[&str] = &[
    "astronaut.png",
    "chelsea.png",
    "china.jpg",
    "coffee.png",
    "flower.jpg",
    "flower2.jpg",
    "hopper.jpg",
    "motorcycle_left.png",
    "rocket.jpg",
];
const PREVIEW_SIZE: u32 = 1280;

struct Options {
    /// Time per measurement.
    seconds: f64,
    batches: Vec<usize>,
    /// Concurrent callers; default twice the batch size.
    callers: Option<usize>,
    /// Alternating measurements of ours and Python's per batch size; the medians are compared.
    rounds: usize,
    /// Our sessions side by side (`recognizer.parallel_runs`); default as configured.
    parallel_runs: Option<usize>,
    /// Intra-op threads per session (`recognizer.intra_threads`); default as configured.
    intra_threads: Option<usize>,
}

const USAGE: &str = "usage: cargo bench -p imgpipe-recognizer --bench throughput -- \
    [--seconds 5] [--rounds 3] [--batches 1,8,32] [--callers N (default: twice the batch)] \
    [--parallel-runs N] [--intra-threads N] (defaults: recognizer.parallel_runs and \
    recognizer.intra_threads)";

fn options() -> Result<Options, Error> {
    let mut options = Options {
        seconds: 5.0,
        batches: vec![1, 8, 32],
        callers: None,
        rounds: 3,
        parallel_runs: None,
        intra_threads: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => options.seconds = args.next().ok_or("--seconds N")?.parse()?,
            "--batches" => {
                options.batches = args
                    .next()
                    .ok_or("--batches 1,8,32")?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?;
            }
            "--callers" => options.callers = Some(args.next().ok_or("--callers N")?.parse()?),
            "--rounds" => {
                options.rounds = args.next().ok_or("--rounds N")?.parse::<usize>()?.max(1)
            }
            "--parallel-runs" => {
                options.parallel_runs = Some(args.next().ok_or("--parallel-runs N")?.parse()?)
            }
            "--intra-threads" => {
                options.intra_threads = Some(args.next().ok_or("--intra-threads N")?.parse()?)
            }
            "--bench" => {} // passed by `cargo bench`
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}").into()),
        }
    }
    Ok(options)
}

fn main() -> Result<(), Error> {
    let options = options()?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace")?
        .to_owned();
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("recognizer-bench");
    std::fs::create_dir_all(&cache)?;
    let defaults = RecognizerConfig::default();
    let config = RecognizerConfig {
        model: root.join("models/efficientnet-lite0.onnx"),
        labels: root.join("models/efficientnet-lite0.labels.txt"),
        onnxruntime: root.join("models/libonnxruntime.so"),
        parallel_runs: options.parallel_runs.unwrap_or(defaults.parallel_runs),
        intra_threads: options.intra_threads.unwrap_or(defaults.intra_threads),
        ..defaults
    };
    let python = root.join(".venv/bin/python");
    for needed in [&config.model, &config.onnxruntime, &python] {
        if !needed.exists() {
            return Err(
                format!("{} missing: run `bash scripts/setup.sh`", needed.display()).into(),
            );
        }
    }

    let previews = previews(&root, &cache)?;
    let tensors = cache.join("tensors.f32");
    let (made, preprocess_ms) = write_tensors(&previews, &tensors)?;
    let kib: usize = previews.iter().map(|(_, b)| b.len()).sum::<usize>() / 1024;
    println!(
        "{} previews, {PREVIEW_SIZE} px JPEG, {kib} KiB in all; preprocessing (reduced-scale \
         decode, resize, normalise) {preprocess_ms:.2} ms per image on one thread",
        previews.len()
    );
    println!(
        "inference threads {} (ours: {} parallel runs x {} intra-op; Python: {} intra-op), {} \
         cores, load average before: {}",
        threads(&config),
        config.parallel_runs,
        config.intra_threads,
        threads(&config),
        std::thread::available_parallelism().map_or(0, usize::from),
        load_average()
    );
    println!(
        "{} rounds of {} s per side and batch size, alternating; medians (min-max)",
        options.rounds, options.seconds
    );
    println!();
    println!(
        "| batch | ours, images/s (preprocessing included) | mean images per run | ours, model only | Python onnxruntime, model only | ours / Python | ours model only / Python |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for &batch in &options.batches {
        let callers = options.callers.unwrap_or(2 * batch).max(1);
        let classifier = Classifier::load(&RecognizerConfig {
            batch_size: batch,
            ..config.clone()
        })?;
        let (full, model_only) = (Input::Previews(&previews), Input::Tensors(&made));
        // Warm-up: the first runs of a batch shape allocate.
        run_for(&classifier, full, callers, Duration::from_secs(1))?;
        let (mut mine, mut bare, mut peers, mut mean_batches) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..options.rounds {
            let (rate, mean_batch) = ours(&classifier, full, callers, options.seconds)?;
            mine.push(rate);
            mean_batches.push(mean_batch);
            bare.push(ours(&classifier, model_only, callers, options.seconds)?.0);
            peers.push(python_peer(
                &python,
                &root,
                &config,
                &tensors,
                batch,
                options.seconds,
            )?);
        }
        let (ours, model, peer) = (median(&mut mine), median(&mut bare), median(&mut peers));
        println!(
            "| {batch} | {ours:.1} ({}) | {:.1} | {model:.1} ({}) | {peer:.1} ({}) | {:.2}x | {:.2}x |",
            range(&mine),
            median(&mut mean_batches),
            range(&bare),
            range(&peers),
            ours / peer,
            model / peer
        );
        std::io::stdout().flush()?;
    }
    println!();
    println!("load average after: {}", load_average());
    Ok(())
}

/// 1280 px JPEG previews of the real photos, made once and cached: `(name, JPEG bytes)`.
fn previews(root: &Path, cache: &Path) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let renderer = Renderer::new(&ResizerConfig::default());
    let mut out = Vec::new();
    for name in PHOTOS {
        let cached = cache.join(format!("{name}.preview.jpg"));
        if let Ok(bytes) = std::fs::read(&cached) {
            out.push((name.to_string(), bytes));
            continue;
        }
        let source = root.join("tests/photos").join(name);
        let bytes = std::fs::read(&source)
            .map_err(|e| format!("{}: {e}; run `bash scripts/setup.sh`", source.display()))?;
        let upscaled = scale_to_preview(&image::load_from_memory(&bytes)?.to_rgb8())?;
        let mut png = Vec::new();
        upscaled.write_to(&mut Cursor::new(&mut png), ImageFormat::Png)?;
        let preview = renderer.render(&png)?.preview;
        if preview.width.max(preview.height) != PREVIEW_SIZE {
            return Err(format!("{name}: preview is {}x{}", preview.width, preview.height).into());
        }
        std::fs::write(&cached, &preview.bytes)?;
        out.push((name.to_string(), preview.bytes));
    }
    Ok(out)
}

/// `image` scaled (up) so its longer side is the preview size, Lanczos3 as in the resizer.
fn scale_to_preview(image: &RgbImage) -> Result<RgbImage, Error> {
    let (w, h) = image.dimensions();
    let scale = f64::from(PREVIEW_SIZE) / f64::from(w.max(h));
    let size = |side: u32| ((f64::from(side) * scale).round() as u32).clamp(1, PREVIEW_SIZE);
    let mut out = RgbImage::new(size(w), size(h));
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    Resizer::new().resize(image, &mut out, &options)?;
    Ok(out)
}

/// Our preprocessing of every preview, also written as raw little-endian f32 for the Python
/// peer. Returns the tensors and the preprocessing time per image on one thread, in ms.
fn write_tensors(
    previews: &[(String, Vec<u8>)],
    path: &Path,
) -> Result<(Vec<Vec<f32>>, f64), Error> {
    let mut tensors = Vec::new();
    let started = Instant::now();
    let rounds = 5;
    for round in 0..rounds {
        for (_, bytes) in previews {
            let image = preprocess::decode_at_least(bytes, preprocess::RESIZE_SHORTER, 0)?;
            let tensor = preprocess::tensor(&image)?;
            if round == 0 {
                tensors.push(tensor);
            }
        }
    }
    let per_image = started.elapsed().as_secs_f64() * 1000.0 / (rounds * previews.len()) as f64;
    let bytes: Vec<u8> = tensors
        .iter()
        .flatten()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    std::fs::write(path, bytes)?;
    Ok((tensors, per_image))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn range(values: &[f64]) -> String {
    let (min, max) = values
        .iter()
        .fold((f64::INFINITY, 0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    format!("{min:.0}-{max:.0}")
}

/// Images per second through `classifier`, and the mean images per model run.
fn ours(
    classifier: &Classifier,
    input: Input<'_>,
    callers: usize,
    seconds: f64,
) -> Result<(f64, f64), Error> {
    let before = classifier.batch_stats();
    let (images, elapsed) = run_for(classifier, input, callers, Duration::from_secs_f64(seconds))?;
    let after = classifier.batch_stats();
    let runs = (after.runs - before.runs).max(1);
    Ok((
        images as f64 / elapsed.as_secs_f64(),
        (after.images - before.images) as f64 / runs as f64,
    ))
}

/// What the callers feed the classifier.
#[derive(Clone, Copy)]
enum Input<'a> {
    /// Preview JPEGs: decoding and preprocessing included.
    Previews(&'a [(String, Vec<u8>)]),
    /// Tensors made beforehand: the model and batching only, as the Python peer measures.
    Tensors(&'a [Vec<f32>]),
}

/// `callers` threads recognizing inputs in turn until `budget` is spent: images done, time.
fn run_for(
    classifier: &Classifier,
    input: Input<'_>,
    callers: usize,
    budget: Duration,
) -> Result<(usize, Duration), Error> {
    let (next, done, stop) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicBool::new(false),
    );
    let one = |i: usize| -> Result<(), String> {
        match input {
            Input::Previews(previews) => {
                let (name, bytes) = &previews[i % previews.len()];
                classifier
                    .recognize_bytes(bytes, 0, 5)
                    .map_err(|e| format!("{name}: {e}"))?;
            }
            Input::Tensors(tensors) => {
                classifier
                    .recognize_tensor(tensors[i % tensors.len()].clone(), 5)
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    };
    let started = Instant::now();
    let failure = std::thread::scope(|s| {
        let workers: Vec<_> = (0..callers)
            .map(|_| {
                s.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        if let Err(e) = one(next.fetch_add(1, Ordering::Relaxed)) {
                            stop.store(true, Ordering::Relaxed);
                            return Some(e);
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    None
                })
            })
            .collect();
        while started.elapsed() < budget && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(5));
        }
        stop.store(true, Ordering::Relaxed);
        // Images finished after the bell still count, with their time.
        workers.into_iter().find_map(|w| w.join().ok().flatten())
    });
    if let Some(failure) = failure {
        return Err(failure.into());
    }
    Ok((done.load(Ordering::Relaxed), started.elapsed()))
}

/// The Python peer's images per second at `batch`.
fn python_peer(
    python: &Path,
    root: &Path,
    config: &RecognizerConfig,
    tensors: &Path,
    batch: usize,
    seconds: f64,
) -> Result<f64, Error> {
    let script: PathBuf = root.join("recognizer/benches/ort_peer.py");
    let child = Command::new(python)
        .arg(&script)
        .arg("--model")
        .arg(&config.model)
        .arg("--tensors")
        .arg(tensors)
        .arg("--threads")
        .arg(threads(config).to_string())
        .arg("--batches")
        .arg(batch.to_string())
        .arg("--seconds")
        .arg(seconds.to_string())
        .stdout(Stdio::piped())
        .spawn()?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        return Err(format!("{} failed: {}", script.display(), output.status).into());
    }
    for line in BufReader::new(output.stdout.as_slice()).lines() {
        let line: serde_json::Value = serde_json::from_str(&line?)?;
        if line["batch"] == batch {
            return line["images_per_s"]
                .as_f64()
                .ok_or_else(|| "no images_per_s from the peer".into());
        }
    }
    Err("the Python peer printed no result".into())
}

/// Inference threads in all on our side, given to the Python peer as its intra-op threads.
fn threads(config: &RecognizerConfig) -> usize {
    config.parallel_runs.max(1) * config.intra_threads.max(1)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}
