//! Starts the configured services on one listener and shuts them all down on one signal.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use imgpipe_core::bus::Subscription;
use imgpipe_core::config::{Config, ObjectStoreKind};
use imgpipe_core::event::Topic;
use imgpipe_core::worker::{self, Handler};
use imgpipe_object_store::EmbeddedS3Config;
use imgpipe_recognizer::{Classifier, Ocr, RecognizerHandler};
use imgpipe_resizer::{Renderer, ResizerHandler};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::backends::Backends;
use crate::roles::Roles;
use crate::web;

/// A started pipeline (or part of one).
pub struct Running {
    /// Where the HTTP server listens.
    pub addr: SocketAddr,
    /// The URL browsers use.
    pub base_url: String,
    pub backends: Backends,
    shutdown: CancellationToken,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl Running {
    /// Stops taking work, lets in-flight messages finish, and waits for every task.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let mut first_error = None;
        while let Some(joined) = self.tasks.join_next().await {
            if let Err(e) = joined.map_err(anyhow::Error::from).and_then(|r| r) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Runs until `signal` resolves or a task fails, then stops.
    pub async fn run_until(
        mut self,
        signal: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        tokio::select! {
            _ = signal => info!("shutting down"),
            Some(joined) = self.tasks.join_next() => {
                let result = joined.map_err(anyhow::Error::from).and_then(|r| r);
                if let Err(e) = &result {
                    error!(error = %e, "a service stopped");
                }
                self.stop().await?;
                return result.and(Err(anyhow::anyhow!("a service stopped unexpectedly")));
            }
        }
        self.stop().await
    }
}

pub fn resizer_subscription() -> Subscription {
    Subscription::new("resizer", &[Topic::OBJECT_CREATED])
}

pub fn recognizer_subscription() -> Subscription {
    Subscription::new("recognizer", &[Topic::RENDITIONS_READY])
}

/// Every queue of the pipeline, consumed or not by this process.
pub fn pipeline_subscriptions() -> Vec<Subscription> {
    vec![
        resizer_subscription(),
        recognizer_subscription(),
        imgpipe_metadata_store::subscription(),
    ]
}

/// Starts `roles` with `config` on `listener` (bind port 0 in tests).
pub async fn start(config: Config, listener: TcpListener, roles: Roles) -> anyhow::Result<Running> {
    let addr = listener.local_addr()?;
    let base_url = if config.public_url.is_empty() {
        format!("http://{addr}")
    } else {
        config.public_url.trim_end_matches('/').to_owned()
    };
    let backends = Backends::open(&config, addr, &base_url).await?;
    let os = &config.object_store;

    // Load the model before accepting uploads: a missing model is a set-up error, not a
    // per-image failure.
    let recognizer = if roles.recognizer {
        let rc = config.recognizer.clone();
        let (classifier, ocr) = tokio::task::spawn_blocking(move || {
            let classifier = Classifier::load(&rc).context("cannot start the recognizer")?;
            let ocr = Ocr::from_config(&rc)
                .context("cannot start OCR (set recognizer.ocr = false to run without it)")?;
            anyhow::Ok((classifier, ocr))
        })
        .await??;
        Some((Arc::new(classifier), ocr.map(Arc::new)))
    } else {
        None
    };

    // Every process declares every pipeline queue (idempotently) before it can publish: an
    // object store or upload API started before the workers must not publish into an exchange
    // with nothing bound, where the broker would drop the event.
    let mut subscriptions = Vec::new();
    if roles.resizer {
        subscriptions.push(resizer_subscription());
    }
    if roles.recognizer {
        subscriptions.push(recognizer_subscription());
    }
    if roles.metadata_store {
        subscriptions.push(imgpipe_metadata_store::subscription());
    }
    for s in &pipeline_subscriptions() {
        backends
            .bus
            .declare(s)
            .await
            .with_context(|| format!("cannot declare queue {}", s.queue))?;
    }

    let embedded_s3 =
        roles.object_store && os.kind == ObjectStoreKind::Embedded && os.endpoint.is_empty();
    let s3 = if embedded_s3 {
        let s3 = imgpipe_object_store::router(
            EmbeddedS3Config {
                root: config.objects_dir(),
                access_key: os.access_key.clone(),
                secret_key: os.secret_key.clone(),
                region: os.region.clone(),
                buckets: vec![os.originals_bucket.clone(), os.renditions_bucket.clone()],
                notify_buckets: if os.notify {
                    vec![os.originals_bucket.clone()]
                } else {
                    Vec::new()
                },
                max_object_bytes: config.upload.max_bytes.max(config.resizer.max_bytes),
            },
            backends.bus.clone(),
        )
        .context("cannot start the embedded S3 endpoint")?;
        Some(s3)
    } else {
        None
    };
    let queues = subscriptions.iter().map(|s| s.queue.clone()).collect();
    let mut app = web::router(&backends, roles, queues, s3);
    if roles.upload_api {
        app = app.merge(imgpipe_upload_api::router(
            imgpipe_upload_api::UploadState {
                store: backends.store.clone(),
                bus: backends.bus.clone(),
                bucket: os.originals_bucket.clone(),
                region: os.region.clone(),
                limits: config.upload.clone(),
            },
        ));
    }
    if roles.metadata_store {
        app = app.merge(imgpipe_metadata_store::router(
            imgpipe_metadata_store::QueryState {
                meta: backends.meta.clone(),
                store: backends.store.clone(),
            },
        ));
    }

    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let stop = shutdown.clone();
    tasks.spawn(async move {
        // The peer address feeds the upload API's per-client rate limit.
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
        .context("HTTP server failed")
    });

    if roles.upload_api || roles.resizer {
        for bucket in [&os.originals_bucket, &os.renditions_bucket] {
            backends
                .store
                .ensure_bucket(bucket)
                .await
                .with_context(|| format!("cannot create bucket {bucket}"))?;
        }
    }

    let policy = config.retry.policy();
    let metrics = backends.metrics.clone();
    let mut spawn_worker =
        |subscription: Subscription, handler: Arc<dyn Handler>, concurrency: usize| {
            let (bus, policy, stop, metrics) = (
                backends.bus.clone(),
                policy.clone(),
                shutdown.clone(),
                metrics.clone(),
            );
            tasks.spawn(async move {
                worker::run(
                    bus,
                    subscription,
                    handler,
                    policy,
                    concurrency,
                    metrics,
                    stop.cancelled_owned(),
                )
                .await
                .context("worker stopped")
            });
        };
    if roles.resizer {
        let handler = ResizerHandler::new(
            Arc::new(Renderer::new(&config.resizer)),
            backends.store.clone(),
            backends.bus.clone(),
            os.renditions_bucket.clone(),
            config.resizer.max_bytes,
        );
        spawn_worker(
            resizer_subscription(),
            Arc::new(handler),
            config.resizer.concurrency,
        );
    }
    if let Some((classifier, ocr)) = recognizer {
        let handler = RecognizerHandler::new(
            classifier,
            backends.store.clone(),
            backends.bus.clone(),
            config.recognizer.top_k,
        )
        .with_ocr(ocr);
        spawn_worker(
            recognizer_subscription(),
            Arc::new(handler),
            config.recognizer.concurrency,
        );
    }
    if roles.metadata_store {
        let handler = imgpipe_metadata_store::MetadataHandler::new(
            backends.meta.clone(),
            os.originals_bucket.clone(),
        );
        spawn_worker(imgpipe_metadata_store::subscription(), Arc::new(handler), 4);
    }
    info!(%addr, %base_url, ?roles, "imgpipe started");
    Ok(Running {
        addr,
        base_url,
        backends,
        shutdown,
        tasks,
    })
}
