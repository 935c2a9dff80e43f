//! `imgpipe thumbnail FILE... --out DIR`: the resizer on local files, for scripts and
//! benchmarks. The same code as the resizer stage (sniff the format, check the header against
//! `resizer.max_pixels`, one decode at reduced scale where the format allows, EXIF orientation,
//! Lanczos3 thumbnail and preview, sRGB, JPEG or WebP per `resizer.format`), with the same
//! `resizer.*` config. Files are processed in parallel, one per core. Writes
//! `DIR/<name>.thumb.<ext>` and `DIR/<name>.preview.<ext>`, `<name>` being the file's whole name
//! (`a.jpg` and `a.png` give `a.jpg.thumb.jpg` and `a.png.thumb.jpg`), and prints one JSON line
//! per file, in the order given: `{"path", "format", "width", "height", "thumb": {path, width,
//! height, bytes}, "preview": {...}, "camera"?, "ms"}`, or `{"path", "error"}` for a file that
//! could not be rendered. Of files with the same name (from different directories), the first
//! is rendered and the others fail, rather than silently replace its renditions.

use std::collections::HashMap;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use imgpipe_contract::config::Config;
use imgpipe_contract::document::CameraInfo;
use imgpipe_resizer::{Encoded, Renderer};
use serde::Serialize;

use crate::files::in_order;
use crate::tag::read;

/// `imgpipe thumbnail`.
#[derive(Debug, Args)]
pub struct ThumbnailCommand {
    /// Image files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Directory for the renditions (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Files rendered at once (default: the cores available).
    #[arg(long)]
    jobs: Option<usize>,
}

#[derive(Serialize)]
struct Written {
    path: String,
    width: u32,
    height: u32,
    bytes: usize,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Line {
    Rendered {
        path: String,
        format: String,
        width: u32,
        height: u32,
        thumb: Written,
        preview: Written,
        #[serde(skip_serializing_if = "Option::is_none")]
        camera: Option<Box<CameraInfo>>,
        ms: f64,
    },
    Failed {
        path: String,
        error: String,
    },
}

impl ThumbnailCommand {
    /// Renders every file, writing one line per file to `out` as results come in (in input
    /// order). Fails, after writing every line, when any file could not be rendered. Blocks.
    pub fn run(self, config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.out)
            .with_context(|| format!("cannot create {}", self.out.display()))?;
        let renderer = Renderer::new(&config.resizer);
        let max_bytes = config.resizer.max_bytes;
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let workers = self.jobs.unwrap_or(cores);
        let dir = self.out.as_path();
        let jobs = output_names(&self.files);
        let mut failed = 0;
        in_order(
            &jobs,
            workers,
            |(path, name)| match name {
                Ok(name) => render(&renderer, path, dir, name, max_bytes),
                Err(error) => Line::Failed {
                    path: path.to_string_lossy().into_owned(),
                    error: error.clone(),
                },
            },
            |_, line| {
                failed += usize::from(matches!(line, Line::Failed { .. }));
                serde_json::to_writer(&mut *out, &line)?;
                writeln!(out)?;
                out.flush()?;
                Ok(())
            },
        )?;
        if failed > 0 {
            anyhow::bail!(
                "{failed} of {} files could not be rendered",
                self.files.len()
            );
        }
        Ok(())
    }
}

/// Each file with the name its renditions are written under (its file name), or, for a file
/// whose name an earlier one already took, why it is not rendered.
fn output_names(files: &[PathBuf]) -> Vec<(&Path, Result<String, String>)> {
    let mut taken: HashMap<String, &Path> = HashMap::new();
    files
        .iter()
        .map(|path| {
            let name = path
                .file_name()
                .map_or_else(|| "image".to_owned(), |n| n.to_string_lossy().into_owned());
            let name = match taken.get(&name) {
                Some(first) => Err(format!(
                    "not rendered: its renditions ({name}.thumb.*, {name}.preview.*) would \
                     replace those of {}; give the files different names, or render them into \
                     different --out directories",
                    first.display()
                )),
                None => {
                    taken.insert(name.clone(), path);
                    Ok(name)
                }
            };
            (path.as_path(), name)
        })
        .collect()
}

fn render(renderer: &Renderer, path: &Path, dir: &Path, name: &str, max_bytes: u64) -> Line {
    let shown = path.to_string_lossy().into_owned();
    let started = Instant::now();
    let result = read(path, max_bytes).and_then(|bytes| {
        // A decoder bug must cost this file, not the whole run. `render` reserves nothing from
        // the renderer's decode budget (only `render_in_budget` does), so a panic cannot leave
        // the renderer's shared state half-changed.
        let rendered = std::panic::catch_unwind(AssertUnwindSafe(|| renderer.render(&bytes)))
            .map_err(|_| "the decoder panicked".to_owned())?
            .map_err(|e| e.to_string())?;
        let write = |which: &str, encoded: &Encoded| -> Result<Written, String> {
            let target = dir.join(format!("{name}.{which}.{}", encoded.extension));
            std::fs::write(&target, &encoded.bytes)
                .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
            Ok(Written {
                path: target.to_string_lossy().into_owned(),
                width: encoded.width,
                height: encoded.height,
                bytes: encoded.bytes.len(),
            })
        };
        Ok(Line::Rendered {
            path: shown.clone(),
            thumb: write("thumb", &rendered.thumb)?,
            preview: write("preview", &rendered.preview)?,
            format: rendered.format,
            width: rendered.width,
            height: rendered.height,
            camera: rendered.camera.map(Box::new),
            ms: (started.elapsed().as_secs_f64() * 1e4).round() / 10.0,
        })
    });
    result.unwrap_or_else(|error| Line::Failed { path: shown, error })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace")
            .to_owned()
    }

    #[test]
    fn renders_real_photos_and_reports_bad_files_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bad = dir.path().join("notes.jpg");
        std::fs::write(&bad, "not a picture").expect("write");
        let photos = repo().join("tests/photos");
        let command = ThumbnailCommand {
            files: vec![photos.join("chelsea.jpg"), bad, photos.join("rocket.jpg")],
            out: dir.path().join("out"),
            jobs: Some(2),
        };
        let mut config = Config::load(None, std::iter::empty()).expect("defaults");
        config.resizer.thumb_size = 128;
        let mut out = Vec::new();
        let err = command.run(&config, &mut out).expect_err("one file is bad");
        assert!(err.to_string().contains("1 of 3"), "{err}");
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[0]["path"]
                .as_str()
                .expect("path")
                .ends_with("chelsea.jpg")
        );
        assert_eq!(lines[0]["format"], "jpeg");
        assert_eq!(lines[0]["thumb"]["width"], 128);
        assert!(lines[1]["error"].as_str().is_some(), "{}", lines[1]);
        assert!(
            lines[2]["path"]
                .as_str()
                .expect("path")
                .ends_with("rocket.jpg")
        );
        for line in [&lines[0], &lines[2]] {
            for which in ["thumb", "preview"] {
                let written = line[which]["path"].as_str().expect("written");
                let image = image::open(written).expect("a JPEG that decodes");
                assert_eq!(
                    u64::from(image.width()),
                    line[which]["width"].as_u64().expect("w")
                );
            }
        }
    }

    #[test]
    fn files_of_the_same_stem_or_name_do_not_overwrite_each_other() {
        let dir = tempfile::tempdir().expect("tempdir");
        let photos = repo().join("tests/photos");
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(&elsewhere).expect("mkdir");
        std::fs::copy(photos.join("rocket.jpg"), elsewhere.join("chelsea.jpg")).expect("copy");
        let out_dir = dir.path().join("out");
        let command = ThumbnailCommand {
            files: vec![
                photos.join("chelsea.jpg"),
                photos.join("chelsea.png"),
                elsewhere.join("chelsea.jpg"),
            ],
            out: out_dir.clone(),
            jobs: Some(2),
        };
        let config = Config::load(None, std::iter::empty()).expect("defaults");
        let mut out = Vec::new();
        let err = command
            .run(&config, &mut out)
            .expect_err("the third file collides");
        assert!(err.to_string().contains("1 of 3"), "{err}");
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect();
        assert_eq!(lines.len(), 3);

        // Same stem, different extensions: both kept, under predictable names.
        for (line, name) in lines.iter().zip(["chelsea.jpg", "chelsea.png"]) {
            for which in ["thumb", "preview"] {
                let expected = out_dir.join(format!("{name}.{which}.jpg"));
                assert_eq!(
                    line[which]["path"].as_str(),
                    Some(expected.to_string_lossy().as_ref()),
                    "{line}"
                );
                let image = image::open(&expected).expect("a JPEG that decodes");
                assert_eq!(
                    u64::from(image.width()),
                    line[which]["width"].as_u64().expect("w")
                );
            }
        }
        assert_ne!(
            std::fs::read(out_dir.join("chelsea.jpg.thumb.jpg")).expect("first"),
            std::fs::read(out_dir.join("chelsea.png.thumb.jpg")).expect("second"),
        );

        // Same file name from another directory: refused, naming the file it would replace,
        // and the first file's renditions are left as they were (the cat, not the rocket).
        let error = lines[2]["error"].as_str().expect("an error");
        assert!(
            error.contains(&photos.join("chelsea.jpg").display().to_string()),
            "{error}"
        );
        assert!(lines[2].get("thumb").is_none(), "{}", lines[2]);
        let kept = image::open(out_dir.join("chelsea.jpg.preview.jpg")).expect("decodes");
        let cat = image::open(photos.join("chelsea.jpg")).expect("decodes");
        assert_eq!(
            (kept.width(), kept.height()),
            (cat.width(), cat.height()),
            "the preview is still chelsea's"
        );
        let mut written: Vec<String> = std::fs::read_dir(&out_dir)
            .expect("read out")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        written.sort();
        assert_eq!(
            written,
            [
                "chelsea.jpg.preview.jpg",
                "chelsea.jpg.thumb.jpg",
                "chelsea.png.preview.jpg",
                "chelsea.png.thumb.jpg"
            ]
        );
    }
}
