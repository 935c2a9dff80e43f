//! `imgpipe tag FILE...`: the recognizer on local files, for scripts and benchmarks. The same
//! code as the recognizer stage (decode with EXIF orientation, resize to the model input, batch
//! with other files, infer, map to categories), with the same `recognizer.*` config. Prints one
//! JSON line per file, in the order given:
//! `{"path", "tags": [{label, score}], "categories": [{name, score}], "model": {name, version}}`,
//! or `{"path", "error"}` for a file that could not be read or decoded.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use imgpipe_contract::config::Config;
use imgpipe_contract::document::ModelInfo;
use imgpipe_recognizer::{Classifier, Recognition};
use serde::Serialize;

use crate::files::in_order;

/// `imgpipe tag`.
#[derive(Debug, Args)]
pub struct TagCommand {
    /// Image files (JPEG, PNG, WebP, GIF, TIFF, BMP).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Tags per file (default: recognizer.top_k).
    #[arg(long)]
    top_k: Option<usize>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Line<'a> {
    Tagged {
        path: &'a str,
        #[serde(flatten)]
        recognition: Recognition,
        model: &'a ModelInfo,
    },
    Failed {
        path: &'a str,
        error: String,
    },
}

impl TagCommand {
    /// Tags every file, writing one line per file to `out` as results come in (in input order).
    /// Fails, after writing every line, when any file could not be tagged. Blocks: run it off
    /// the async runtime.
    pub fn run(self, config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
        let classifier =
            Classifier::load(&config.recognizer).context("cannot start the recognizer")?;
        let model = classifier.model();
        let top_k = self.top_k.unwrap_or(config.recognizer.top_k);
        let max_bytes = config.resizer.max_bytes;
        // Enough callers to fill a batch; each decodes its own file on its own thread.
        let workers = classifier.batch_size().max(2);
        let mut failed = 0;
        in_order(
            &self.files,
            workers,
            |path| {
                read(path, max_bytes).and_then(|bytes| {
                    // The stage's own path; decoded as small as the model allows (the stage
                    // decodes larger only when OCR reads the picture too).
                    classifier
                        .recognize_bytes(&bytes, 0, top_k)
                        .map(|recognized| recognized.recognition)
                        .map_err(|e| e.to_string())
                })
            },
            |path, result| {
                let path = path.to_string_lossy();
                let line = match result {
                    Ok(recognition) => Line::Tagged {
                        path: &path,
                        recognition,
                        model: &model,
                    },
                    Err(error) => {
                        failed += 1;
                        Line::Failed { path: &path, error }
                    }
                };
                serde_json::to_writer(&mut *out, &line)?;
                writeln!(out)?;
                out.flush()?;
                Ok(())
            },
        )?;
        if failed > 0 {
            anyhow::bail!("{failed} of {} files could not be tagged", self.files.len());
        }
        Ok(())
    }
}

/// The file's bytes, refusing one larger than the pipeline would take (`resizer.max_bytes`).
pub(crate) fn read(path: &Path, max_bytes: u64) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > max_bytes {
        return Err(format!("larger than resizer.max_bytes ({max_bytes} bytes)"));
    }
    Ok(bytes)
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

    fn config() -> Config {
        let root = repo();
        let mut config = Config::load(None, std::iter::empty()).expect("defaults");
        config.recognizer.model = root.join("models/efficientnet-lite0.onnx");
        config.recognizer.labels = root.join("models/efficientnet-lite0.labels.txt");
        config.recognizer.onnxruntime = root.join("models/libonnxruntime.so");
        config
    }

    #[test]
    fn one_line_per_file_in_order_and_a_bad_file_fails_only_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        let garbage = dir.path().join("notes.jpg");
        std::fs::write(&garbage, "not a picture").expect("write");
        let photos = repo().join("tests/photos");
        let files = vec![
            photos.join("chelsea.jpg"),
            garbage.clone(),
            photos.join("coffee.jpg"),
            dir.path().join("missing.png"),
            photos.join("motorcycle_left.png"),
        ];
        let command = TagCommand {
            files: files.clone(),
            top_k: Some(3),
        };
        let mut out = Vec::new();
        let err = command
            .run(&config(), &mut out)
            .expect_err("two files fail");
        assert!(err.to_string().contains("2 of 5"), "{err}");

        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        assert_eq!(lines.len(), 5);
        for (line, file) in lines.iter().zip(&files) {
            assert_eq!(line["path"], file.to_string_lossy().as_ref());
        }
        let top = |i: usize| {
            lines[i]["tags"][0]["label"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        };
        let has_category = |i: usize, name: &str| {
            lines[i]["categories"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["name"] == name))
        };
        assert!(["tabby", "tiger cat", "Egyptian cat"].contains(&top(0).as_str()));
        assert!(has_category(0, "animal/cat"), "{}", lines[0]);
        assert_eq!(lines[0]["tags"].as_array().map(Vec::len), Some(3));
        assert_eq!(lines[0]["model"]["name"], "efficientnet-lite0");
        assert_eq!(top(2), "espresso");
        assert!(has_category(2, "food & drink/coffee"), "{}", lines[2]);
        assert_eq!(top(4), "moped");
        assert!(has_category(4, "vehicle"), "{}", lines[4]);
        for bad in [1, 3] {
            assert!(lines[bad]["error"].is_string(), "{}", lines[bad]);
            assert!(lines[bad].get("tags").is_none(), "{}", lines[bad]);
        }
        assert!(
            lines[1]["error"]
                .as_str()
                .is_some_and(|e| e.contains("decode")),
            "{}",
            lines[1]
        );
        // Scores print as the rounded decimals they are (0.3838), not as f32s widened to f64
        // (0.3837999999523163).
        for line in [&lines[0], &lines[2], &lines[4]] {
            for list in ["tags", "categories"] {
                for item in line[list].as_array().expect(list) {
                    let score = item["score"].to_string();
                    assert!(score.len() <= "0.1234".len(), "{score} in {line}");
                }
            }
        }
    }

    #[test]
    fn all_good_files_succeed() {
        let command = TagCommand {
            files: vec![repo().join("tests/photos/china.jpg")],
            top_k: None,
        };
        let mut out = Vec::new();
        command.run(&config(), &mut out).expect("tagged");
        let line: serde_json::Value = serde_json::from_slice(&out).expect("one JSON line");
        assert_eq!(line["tags"].as_array().map(Vec::len), Some(5));
        assert_eq!(line["tags"][0]["label"], "palace");
    }
}
