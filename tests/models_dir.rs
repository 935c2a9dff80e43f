//! The binary finds the models from any working directory (the repository's `models/`, found
//! above the binary in `target/`), and a missing models directory stops `up` and `tag` with the
//! setting to fix before `up` creates anything in its data directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// `imgpipe` run in `dir`, with none of the runner's `IMGPIPE_*` settings nor `ORT_DYLIB_PATH`:
/// only what the binary finds by itself.
fn imgpipe(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_imgpipe"));
    command.current_dir(dir).stdin(Stdio::null());
    for (name, _) in std::env::vars_os() {
        let name_str = name.to_string_lossy();
        if name_str.starts_with("IMGPIPE_") || name_str == "ORT_DYLIB_PATH" {
            command.env_remove(&name);
        }
    }
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("imgpipe runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn tag_works_from_another_folder() {
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let photo = repo_root().join("tests/photos/china.jpg");
    let out = run(imgpipe(elsewhere.path()).arg("tag").arg(&photo));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "imgpipe tag failed from {}:\n{stderr}\n(run `bash scripts/setup.sh` if the models are missing)",
        elsewhere.path().display()
    );
    let line: serde_json::Value =
        serde_json::from_str(stdout.lines().next().unwrap_or_default()).expect("a JSON line");
    assert_eq!(line["path"], photo.display().to_string(), "{stdout}");
    let tags = line["tags"].as_array().expect("tags");
    assert!(!tags.is_empty(), "{stdout}");
}

#[test]
fn a_wrong_models_dir_names_the_setting_and_up_creates_nothing() {
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let nowhere = elsewhere.path().join("no-models-here");
    let data = elsewhere.path().join("data");

    let out = run(imgpipe(elsewhere.path())
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("IMGPIPE_RECOGNIZER__MODELS_DIR", &nowhere));
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success(),
        "up started without models:\n{stderr}"
    );
    for part in [
        format!(
            "ONNX Runtime library not found at {}",
            nowhere.join("libonnxruntime.so").display()
        ),
        "bash scripts/setup.sh".to_owned(),
        "recognizer.models_dir (IMGPIPE_RECOGNIZER__MODELS_DIR)".to_owned(),
    ] {
        assert!(stderr.contains(&part), "{part:?} not in:\n{stderr}");
    }
    assert!(
        !data.exists(),
        "up created {} before finding the models missing",
        data.display()
    );

    let photo = repo_root().join("tests/photos/china.jpg");
    let out = run(imgpipe(elsewhere.path())
        .arg("tag")
        .arg(&photo)
        .env("IMGPIPE_RECOGNIZER__MODELS_DIR", &nowhere));
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "tag ran without models:\n{stderr}");
    assert!(
        stderr.contains("IMGPIPE_RECOGNIZER__MODELS_DIR"),
        "the message does not name the setting:\n{stderr}"
    );
}

#[test]
fn up_starts_from_another_folder() {
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let data = elsewhere.path().join("data");
    let mut child = imgpipe(elsewhere.path())
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("IMGPIPE_LOG__FILTER", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("imgpipe up starts");
    let stderr = child.stderr.take().expect("stderr");
    let (lines, seen) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let up = loop {
        match seen.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => {
                let is_up = line.contains("imgpipe is up: open ");
                log.push(line);
                if is_up {
                    break true;
                }
            }
            // Exited (stderr closed) or silent for too long.
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        up,
        "imgpipe up did not start from {}:\n{}",
        elsewhere.path().display(),
        log.join("\n")
    );
}
