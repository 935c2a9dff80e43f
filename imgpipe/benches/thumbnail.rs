//! The resizer beside `vipsthumbnail` (libvips, Debian's `libvips-tools`) on large real photos:
//! wall time and peak memory (max RSS) of one process each over the same files.
//!
//! ```sh
//! bash scripts/setup.sh && bash scripts/bench-resizer-setup.sh   # vipsthumbnail, 5120x2880 photos
//! cargo bench -p imgpipe --bench thumbnail [-- --rounds 3 --dir .cache/wallpapers]
//! ```
//!
//! Ours: `imgpipe thumbnail FILES --out DIR` (the resizer stage's own code: both renditions, the
//! 256 px thumbnail and the 1280 px preview, JPEG-encoded, plus the placeholder), with files in
//! parallel up to the cores available (its default) and with `--jobs 1`. The peer:
//! `vipsthumbnail -s 1280 FILES -o DIR/%s.jpg`, one rendition per file, with libvips' own
//! threading. Rounds alternate between the sides (a busy moment hurts both) and medians are
//! compared. Peak memory is each child's maximum resident set size, from GNU `time`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

type Error = Box<dyn std::error::Error>;

struct Run {
    seconds: f64,
    max_rss_kib: i64,
}

fn main() -> Result<(), Error> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace")?
        .to_owned();
    let mut rounds = 3;
    let mut dir = root.join(".cache/wallpapers");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rounds" => rounds = args.next().ok_or("--rounds N")?.parse::<usize>()?.max(1),
            "--dir" => dir = PathBuf::from(args.next().ok_or("--dir DIR")?),
            "--bench" => {}
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| {
            format!(
                "{}: {e}; run `bash scripts/bench-resizer-setup.sh`",
                dir.display()
            )
        })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no JPEGs in {}", dir.display()).into());
    }
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_imgpipe"));
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("thumbnail-bench");
    let megapixels: Vec<f64> = files
        .iter()
        .map(|f| image::image_dimensions(f).map(|(w, h)| f64::from(w) * f64::from(h) / 1e6))
        .collect::<Result<_, _>>()?;
    println!(
        "{} photos from {} ({:.1} MP each on average), {} cores, {} rounds, medians",
        files.len(),
        dir.display(),
        megapixels.iter().sum::<f64>() / megapixels.len() as f64,
        std::thread::available_parallelism().map_or(0, usize::from),
        rounds
    );
    println!("peer: {}", version("vipsthumbnail", "--vips-version")?);
    println!();

    std::fs::create_dir_all(&out)?;
    let sides: Vec<(&str, Command)> = vec![
        ("imgpipe thumbnail (256 + 1280 px), files in parallel", {
            let mut c = Command::new(&ours);
            c.arg("thumbnail")
                .args(&files)
                .arg("--out")
                .arg(out.join("ours"));
            c
        }),
        ("imgpipe thumbnail (256 + 1280 px), --jobs 1", {
            let mut c = Command::new(&ours);
            c.arg("thumbnail")
                .args(&files)
                .arg("--out")
                .arg(out.join("ours1"));
            c.args(["--jobs", "1"]);
            c
        }),
        ("vipsthumbnail -s 1280 (one rendition)", {
            std::fs::create_dir_all(out.join("vips"))?;
            let mut c = Command::new("vipsthumbnail");
            c.args(["-s", "1280"]).args(&files).arg("-o");
            c.arg(format!("{}/%s.jpg", out.join("vips").display()));
            c
        }),
    ];
    let mut results: Vec<Vec<Run>> = sides.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for (i, (_, command)) in sides.iter().enumerate() {
            results[i].push(measure(command, &out.join("time.txt"))?);
        }
    }
    let medians: Vec<(f64, i64)> = results
        .iter_mut()
        .map(|runs| {
            runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
            let mid = &runs[runs.len() / 2];
            let peak = runs.iter().map(|r| r.max_rss_kib).max().unwrap_or(0);
            (mid.seconds, peak)
        })
        .collect();
    let (peer_s, peer_kib) = medians[medians.len() - 1];
    println!(
        "| command | s for all | ms per photo | peak RSS MiB | time vs vipsthumbnail | memory vs vipsthumbnail |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for ((name, _), (seconds, kib)) in sides.iter().zip(&medians) {
        println!(
            "| {name} | {seconds:.2} | {:.1} | {:.1} | {:.2}x | {:.2}x |",
            seconds * 1000.0 / files.len() as f64,
            *kib as f64 / 1024.0,
            seconds / peer_s,
            *kib as f64 / peer_kib as f64
        );
    }
    Ok(())
}

/// Runs `command` to completion under GNU time: wall time and its peak resident memory (the
/// child's `ru_maxrss`; the project forbids `unsafe`, so no `wait4` of our own).
fn measure(command: &Command, report: &Path) -> Result<Run, Error> {
    let status = Command::new("/usr/bin/time")
        .args(["-f", "%e %M", "-o"])
        .arg(report)
        .arg(command.get_program())
        .args(command.get_args())
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("/usr/bin/time: {e}; run `bash scripts/bench-resizer-setup.sh`"))?;
    if !status.success() {
        return Err(format!("{command:?} failed: {status}").into());
    }
    let text = std::fs::read_to_string(report)?;
    let mut fields = text.split_whitespace();
    let (Some(seconds), Some(kib)) = (fields.next(), fields.next()) else {
        return Err(format!("unexpected GNU time output {text:?}").into());
    };
    Ok(Run {
        seconds: seconds.parse()?,
        max_rss_kib: kib.parse()?,
    })
}

fn version(program: &str, flag: &str) -> Result<String, Error> {
    let out = Command::new(program)
        .arg(flag)
        .output()
        .map_err(|e| format!("{program}: {e}; run `bash scripts/bench-resizer-setup.sh`"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
