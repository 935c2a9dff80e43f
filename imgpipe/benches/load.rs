//! Load test: N concurrent clients upload real photos for S seconds into the pipeline, with
//! hostile files and malformed events mixed in, a worker SIGKILLed and (scale mode) every broker
//! connection cut once. Afterwards every accepted upload must be in a terminal state exactly
//! once, every hostile file `failed` with a reason, every photo `done`, the queues drained, and no
//! process but the killed one restarted. Prints uploads/s, upload-to-done percentiles and errors.
//!
//! ```sh
//! cargo bench -p imgpipe --bench load [-- --mode embedded|scale|both --clients 50 --seconds 60]
//! ```
//!
//! A program, not a timed test: it exits non-zero when a check fails, whatever the speed.

#[path = "load/clients.rs"]
mod clients;
#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "load/hostile.rs"]
mod hostile;
#[allow(dead_code)]
#[path = "../../tests/scale/services.rs"]
mod services;
#[path = "load/stack.rs"]
mod stack;
#[path = "load/verify.rs"]
mod verify;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clients::{Log, Photo, Plan};
use stack::{Mode, Stack};

type Error = Box<dyn std::error::Error>;

const MAX_ATTEMPTS: u32 = 3;

struct Options {
    modes: Vec<Mode>,
    clients: usize,
    seconds: u64,
}

fn main() -> Result<(), Error> {
    let options = parse_args()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut failed = false;
    for mode in &options.modes {
        let report = runtime.block_on(run(*mode, &options))?;
        println!("{report}");
        failed |= !report.passed();
    }
    if failed {
        return Err("a check failed (see above)".into());
    }
    Ok(())
}

fn parse_args() -> Result<Options, Error> {
    let mut options = Options {
        modes: vec![Mode::Embedded, Mode::Scale],
        clients: 50,
        seconds: 60,
    };
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--mode" => {
                options.modes = match value()?.as_str() {
                    "embedded" => vec![Mode::Embedded],
                    "scale" => vec![Mode::Scale],
                    "both" => vec![Mode::Embedded, Mode::Scale],
                    other => return Err(format!("--mode {other}: embedded, scale or both").into()),
                }
            }
            "--clients" => options.clients = value()?.parse()?,
            "--seconds" => options.seconds = value()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(options)
}

async fn run(mode: Mode, options: &Options) -> Result<verify::Report, Error> {
    let dir = tempfile::tempdir()?;
    let mut stack = Stack::start(mode, dir.path(), MAX_ATTEMPTS).await;
    let keys = uploader_keys(&stack, options.clients).await?;
    let photos = photos()?;
    let real_jpeg = photos
        .iter()
        .find(|p| p.content_type == "image/jpeg")
        .ok_or("no JPEG among the test photos")?
        .bytes
        .clone();
    let started = Instant::now();
    let plan = Arc::new(Plan {
        api: stack.api.clone(),
        query: stack.query.clone(),
        clients: options.clients,
        photos,
        hostile: hostile::kinds(&real_jpeg),
        end: started + Duration::from_secs(options.seconds),
        max_wait: Duration::from_secs(180),
    });
    let mut clients = tokio::task::JoinSet::new();
    for (n, key) in keys.into_iter().enumerate() {
        clients.spawn(clients::run(n, key, plan.clone()));
    }
    let faults = inject_faults(&mut stack, dir.path(), options.seconds).await?;
    let mut logs: Vec<Log> = Vec::new();
    while let Some(log) = clients.join_next().await {
        logs.push(log?);
    }
    let elapsed = started.elapsed();
    let report = verify::check(&mut stack, mode, options.clients, elapsed, logs, faults).await;
    if let Some(pg) = &stack.postgres {
        imgpipe_db_postgres::PostgresDb::drop_schema(pg).await?;
    }
    if !report.passed() {
        eprintln!("{}", stack.log_tails());
    }
    Ok(report)
}

/// One uploader key per client, as separate users would have.
async fn uploader_keys(stack: &Stack, n: usize) -> Result<Vec<String>, Error> {
    let admin = common::Client::new(&stack.query, &stack.admin_key);
    let mut keys = Vec::new();
    for i in 0..n {
        let res = admin
            .api(reqwest::Method::POST, "/api/keys")
            .json(&serde_json::json!({ "role": "uploader", "name": format!("load client {i}") }))
            .send()
            .await?;
        if res.status() != 201 {
            return Err(format!("making a key: {}", res.status()).into());
        }
        let made: serde_json::Value = res.json().await?;
        keys.push(made["key"].as_str().ok_or("no key in answer")?.to_owned());
    }
    Ok(keys)
}

/// The real photos of tests/photos (JPEG and PNG).
fn photos() -> Result<Vec<Photo>, Error> {
    let dir = common::repo_root().join("tests/photos");
    let mut photos = Vec::new();
    for entry in std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}; run scripts/setup.sh", dir.display()))?
    {
        let path = entry?.path();
        let content_type = match path.extension().and_then(|e| e.to_str()) {
            Some("jpg") => "image/jpeg",
            Some("png") => "image/png",
            _ => continue,
        };
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("photo")
            .to_owned();
        photos.push(Photo {
            name,
            content_type,
            bytes: std::fs::read(&path)?,
        });
    }
    photos.sort_by(|a, b| a.name.cmp(&b.name));
    if photos.len() < 10 {
        return Err(format!("expected the real test photos in {}", dir.display()).into());
    }
    Ok(photos)
}

/// The faults, at fixed points of the run: malformed events at a quarter, a worker SIGKILLed at
/// half, the broker connections cut at two thirds.
async fn inject_faults(
    stack: &mut Stack,
    dir: &std::path::Path,
    seconds: u64,
) -> Result<verify::Faults, Error> {
    let at = |fraction: f64| Duration::from_secs_f64(seconds as f64 * fraction);
    let started = Instant::now();
    tokio::time::sleep(at(0.25)).await;
    let malformed = verify::publish_malformed(&stack.bus).await?;
    tokio::time::sleep(at(0.5).saturating_sub(started.elapsed())).await;
    let killed = stack.kill_a_worker(dir).await;
    tokio::time::sleep(at(0.66).saturating_sub(started.elapsed())).await;
    let cut = stack.cut_broker();
    Ok(verify::Faults {
        malformed,
        killed,
        cut,
    })
}
