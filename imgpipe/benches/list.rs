//! The list endpoint under load: `GET /api/images?limit=50` over 100,000 documents, end to end
//! (HTTP, the key check, the rate limit, the query, the response) beside SQLite reading the same
//! 50 rows by itself, in the same run, at the same concurrency.
//!
//! ```sh
//! cargo bench -p imgpipe --bench list [-- --documents 100000 --requests 20000 --concurrency 8]
//! ```
//!
//! The documents are made like real ones (five tags, two categories, a line of text, renditions,
//! camera fields) and stored through the SQLite engine; the pipeline then serves them with only
//! the metadata store running. "SQLite alone" is the engine's own driver (sqlx) reading the
//! first page's rows, the document column and nothing else, as fast as it can.

use std::sync::Arc;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use imgpipe::{Roles, start};
use imgpipe_contract::config::Config;
use imgpipe_contract::document::{
    BBox, CameraInfo, Category, ImageDocument, ModelInfo, Original, Rendition, Renditions, Status,
    Tag, TextLine,
};
use imgpipe_db_sqlite::SqliteDb;
use sqlx::Row;
use tokio::sync::Semaphore;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Options {
    documents: usize,
    requests: usize,
    concurrency: usize,
}

struct Load {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn main() -> Result<(), Error> {
    let options = parse_args()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(options))
}

async fn run(options: Options) -> Result<(), Error> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::load(None, std::iter::empty())?;
    config.listen = "127.0.0.1:0".parse()?;
    config.data_dir = dir.path().to_owned();
    config.access.rate_per_minute = u32::MAX;
    config.log.filter = "warn".to_owned();

    // Made once and kept in target/ (a few minutes of writing), copied for each run.
    let kept = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target")
        .join(format!("bench-list-v2-{}.sqlite", options.documents));
    if !kept.exists() {
        let started = Instant::now();
        let making = kept.with_extension("partial");
        let _ = std::fs::remove_file(&making);
        let db = SqliteDb::open(&making).await?;
        // As the metadata store writes them: with their serving paths.
        let docs: Vec<ImageDocument> = (0..options.documents)
            .map(|n| imgpipe_metadata_store::with_links(document(n)))
            .collect();
        for chunk in docs.chunks(5000) {
            db.import(chunk).await?;
        }
        db.close().await;
        std::fs::rename(&making, &kept)?;
        println!(
            "stored {} documents in {:.1} s (kept in {})",
            options.documents,
            started.elapsed().as_secs_f64(),
            kept.display()
        );
    }
    std::fs::copy(&kept, config.metadata_path())?;

    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let roles = Roles::only(|r| {
        r.metadata_store = true;
        r.object_store = true;
    });
    let running = start(config.clone(), listener, roles).await?;
    let key = std::fs::read_to_string(dir.path().join("admin-key"))?;
    let url = format!("{}/api/images?limit=50", running.base_url);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(options.concurrency)
        .build()?;
    let page: serde_json::Value = http
        .get(&url)
        .bearer_auth(key.trim())
        .send()
        .await?
        .json()
        .await?;
    let items = page["items"].as_array().map(Vec::len).unwrap_or(0);
    if items != 50 {
        return Err(format!("the page has {items} items, not 50: {page}").into());
    }
    let bytes = serde_json::to_vec(&page)?.len();

    let http = Arc::new(http);
    let key = Arc::new(key.trim().to_owned());
    let api = measure(&options, {
        let (http, key, url) = (http.clone(), key.clone(), url.clone());
        move || {
            let (http, key, url) = (http.clone(), key.clone(), url.clone());
            async move {
                let res = http
                    .get(url.as_str())
                    .bearer_auth(key.as_str())
                    .send()
                    .await?;
                if !res.status().is_success() {
                    return Err(format!("{}", res.status()).into());
                }
                Ok(res.bytes().await?.len())
            }
        }
    })
    .await?;
    // What the same HTTP stack and client cost with nearly nothing to do: the floor under the
    // API's figure.
    let health_url = format!("{}/healthz", running.base_url);
    let health = measure(&options, {
        let http = http.clone();
        move || {
            let (http, url) = (http.clone(), health_url.clone());
            async move { Ok(http.get(url.as_str()).send().await?.bytes().await?.len()) }
        }
    })
    .await?;
    running.stop().await?;

    // The same rows, read by the engine's driver alone, on a pool as large as the engine's.
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(config.metadata_path())
                .read_only(true),
        )
        .await?;
    let pool = Arc::new(pool);
    let sqlite = measure(&options, move || {
        let pool = pool.clone();
        async move {
            let rows = sqlx::query(
                "SELECT doc FROM images WHERE tenant = 'default' \
                 ORDER BY created_at DESC, id DESC LIMIT 50",
            )
            .fetch_all(pool.as_ref())
            .await?;
            Ok(rows.iter().map(|r| r.get::<&str, _>(0).len()).sum())
        }
    })
    .await?;

    println!(
        "\nGET /api/images?limit=50 over {} documents ({} KB a page), {} requests at {} at once:",
        options.documents,
        bytes / 1024,
        options.requests,
        options.concurrency
    );
    for (name, load) in [
        ("the API, end to end", &api),
        ("SQLite alone", &sqlite),
        ("GET /healthz", &health),
    ] {
        println!(
            "  {name:20} {:8.0} pages/s, p50 {:6.2} ms, p99 {:6.2} ms",
            load.per_second, load.p50_ms, load.p99_ms
        );
    }
    println!(
        "  SQLite alone / API: {:.2}x the throughput",
        sqlite.per_second / api.per_second
    );
    Ok(())
}

/// Runs `options.requests` calls of `call`, `options.concurrency` at a time (after a warm-up).
async fn measure<F, Fut>(options: &Options, call: F) -> Result<Load, Error>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<usize, Error>> + Send + 'static,
{
    for _ in 0..100 {
        call().await?;
    }
    let slots = Arc::new(Semaphore::new(options.concurrency));
    let mut tasks = Vec::with_capacity(options.requests);
    let started = Instant::now();
    for _ in 0..options.requests {
        let permit = slots.clone().acquire_owned().await?;
        let fut = call();
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let done = fut.await;
            drop(permit);
            done.map(|_| t.elapsed())
        }));
    }
    let mut times = Vec::with_capacity(tasks.len());
    for task in tasks {
        times.push(task.await??);
    }
    let elapsed = started.elapsed();
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
    Ok(Load {
        per_second: options.requests as f64 / elapsed.as_secs_f64(),
        p50_ms: at(0.5),
        p99_ms: at(0.99),
    })
}

/// A document shaped like a finished photo's.
fn document(n: usize) -> ImageDocument {
    let id = format!("{:08x}-{:04x}-7000-8000-{:012x}", n, n % 65536, n);
    let created_at = Utc
        .timestamp_millis_opt(1_700_000_000_000 + n as i64 * 1000)
        .single()
        .unwrap_or_else(Utc::now);
    let rendition = |name: &str, side: u32| Rendition {
        bucket: "renditions".into(),
        key: format!("default/{id}/{name}.jpg"),
        url: None,
        width: side,
        height: side * 2 / 3,
        content_type: "image/jpeg".into(),
    };
    let labels = ["tabby", "tiger cat", "Egyptian cat", "lynx", "Persian cat"];
    ImageDocument {
        id: id.clone(),
        tenant: "default".into(),
        status: Status::Done,
        created_at,
        original: Original {
            bucket: "originals".into(),
            key: format!("default/{id}/IMG_{n:05}.jpg"),
            filename: format!("IMG_{n:05}.jpg"),
            content_type: Some("image/jpeg".into()),
            size: 4_000_000 + n as u64,
            etag: Some(format!("{:032x}", n * 7919)),
            sequencer: Some(format!("{:016X}", n)),
            format: Some("jpeg".into()),
            width: Some(5472),
            height: Some(3648),
            camera: Some(CameraInfo {
                make: Some("Canon".into()),
                model: Some("Canon EOS R5".into()),
                lens: Some("RF24-105mm F4 L IS USM".into()),
                taken_at: Some("2024-05-01T14:03:07".into()),
                orientation: Some(1),
                gps: None,
            }),
            earlier_etags: Vec::new(),
        },
        renditions: Some(Renditions {
            thumb: rendition("thumb", 256),
            preview: rendition("preview", 1024),
            source_etag: Some(format!("{:032x}", n * 7919)),
        }),
        placeholder: Some("1QcSHQRnh493V4dIh4eXh1h4kJUI".into()),
        tags: labels
            .iter()
            .enumerate()
            .map(|(i, l)| Tag {
                label: (*l).to_owned(),
                score: 0.5 / (i as f32 + 1.0),
            })
            .collect(),
        categories: vec![
            Category {
                name: "animal".into(),
                score: 0.93,
            },
            Category {
                name: "animal/cat".into(),
                score: 0.91,
            },
        ],
        text: vec![TextLine {
            text: "TABBY CAT FOOD".into(),
            score: 0.93,
            bbox: BBox {
                x: 10,
                y: 20,
                width: 200,
                height: 30,
            },
        }],
        model: Some(ModelInfo {
            name: "efficientnet-lite0".into(),
            version: "1".into(),
        }),
        error: None,
        editor_tags: Vec::new(),
        retrying: None,
        stages: Default::default(),
        links: None,
    }
}

fn parse_args() -> Result<Options, Error> {
    let mut options = Options {
        documents: 100_000,
        requests: 20_000,
        concurrency: 8,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--documents" => options.documents = value()?.parse()?,
            "--requests" => options.requests = value()?.parse()?,
            "--concurrency" => options.concurrency = value()?.parse::<usize>()?.max(1),
            "--bench" => {}
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(options)
}
