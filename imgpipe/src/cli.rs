use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use imgpipe::dlq::DlqCommand;
use imgpipe::keys::KeysCommand;
use imgpipe::tag::TagCommand;
use imgpipe::thumbnail::ThumbnailCommand;
use imgpipe::{Roles, start};
use imgpipe_contract::config::Config;
use tokio::net::TcpListener;

/// imgpipe: uploads, thumbnails and tags for photos.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Cli {
    /// TOML config file (defaults, then this file, then IMGPIPE_SECTION__KEY variables, then flags).
    #[arg(long, global = true, env = "IMGPIPE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole pipeline in one process: embedded S3, queue and database, the page at /.
    Up(Serve),
    /// Only the embedded S3 endpoint.
    ObjectStore(Serve),
    /// Only the upload API (presigned URLs) and the page.
    UploadApi(Serve),
    /// Only the resizer worker (HTTP: health endpoints).
    Resizer(Serve),
    /// Only the recognizer worker (HTTP: health endpoints).
    Recognizer(Serve),
    /// Only the metadata writer and the query API.
    MetadataStore(Serve),
    /// List or replay dead letters (messages a stage gave up on).
    Dlq(DlqCommand),
    /// Tag local image files with the recognizer (one JSON line per file).
    Tag(TagCommand),
    /// Make the thumbnail and preview of local image files (one JSON line per file).
    Thumbnail(ThumbnailCommand),
    /// Make, list or revoke API keys (kept in the metadata database).
    Keys(KeysCommand),
}

#[derive(Debug, Args)]
struct Serve {
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Directory for embedded data (objects, queue, metadata).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Turn access control off even on a non-loopback address: every caller is an admin.
    #[arg(long)]
    insecure: bool,
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        let (serve, roles) = match self.command {
            Command::Up(s) => (s, Roles::all()),
            Command::ObjectStore(s) => (s, Roles::only(|r| r.object_store = true)),
            Command::UploadApi(s) => (s, Roles::only(|r| r.upload_api = true)),
            Command::Resizer(s) => (s, Roles::only(|r| r.resizer = true)),
            Command::Recognizer(s) => (s, Roles::only(|r| r.recognizer = true)),
            Command::MetadataStore(s) => (s, Roles::only(|r| r.metadata_store = true)),
            Command::Dlq(dlq) => {
                let config = Config::load(self.config.as_deref(), std::env::vars())?;
                // Warnings (a RabbitMQ reconnect, say) go to stderr, apart from the listing.
                // lapin logs an error for every channel the broker closes, which reading the
                // dead letters of a queue not declared yet does; failures reach us as errors.
                imgpipe_runtime::telemetry::init("warn,lapin=off", config.log.json);
                return dlq.run(config, &mut std::io::stdout().lock()).await;
            }
            Command::Tag(tag) => {
                let config = Config::load(self.config.as_deref(), std::env::vars())?;
                // `tag` loads the classifier only: the OCR models need not exist.
                let mut classifier_only = config.recognizer.clone();
                classifier_only.ocr = false;
                imgpipe_recognizer::check_setup(&classifier_only)?;
                // Stdout is the JSON lines; warnings (a GPU provider falling back) go to stderr.
                imgpipe_runtime::telemetry::init("warn", config.log.json);
                return tokio::task::spawn_blocking(move || {
                    tag.run(&config, &mut std::io::stdout().lock())
                })
                .await?;
            }
            Command::Keys(keys) => {
                let config = Config::load(self.config.as_deref(), std::env::vars())?;
                imgpipe_runtime::telemetry::init("warn", config.log.json);
                return keys.run(config, &mut std::io::stdout().lock()).await;
            }
            Command::Thumbnail(thumbnail) => {
                let config = Config::load(self.config.as_deref(), std::env::vars())?;
                imgpipe_runtime::telemetry::init("warn", config.log.json);
                return tokio::task::spawn_blocking(move || {
                    thumbnail.run(&config, &mut std::io::stdout().lock())
                })
                .await?;
            }
        };
        let mut config = Config::load(self.config.as_deref(), std::env::vars())?;
        if let Some(listen) = serve.listen {
            config.listen = listen;
        }
        if let Some(dir) = serve.data_dir {
            config.data_dir = dir;
        }
        if serve.insecure {
            config.access.enabled = false;
            config.access.insecure = true;
        }
        imgpipe_runtime::telemetry::init(&config.log.filter, config.log.json);
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let running = start(config, listener, roles).await?;
        eprintln!("imgpipe is up: open {}/", running.base_url);
        running.run_until(shutdown_signal()).await
    }
}

/// Ctrl-C or SIGTERM (what Kubernetes and systemd send).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
