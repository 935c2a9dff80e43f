//! Starts the configured services on one listener and shuts them all down on one signal.

use std::net::SocketAddr;

use anyhow::Context;
use imgpipe_contract::config::Config;
use imgpipe_runtime::worker::Worker;
use imgpipe_runtime::{Deps, WorkerSpec};
use imgpipe_s3_server::EmbeddedS3Config;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::backends::{self, Backends};
use crate::roles::{Roles, pipeline_subscriptions};
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

/// Starts `roles` with `config` on `listener` (bind port 0 in tests).
pub async fn start(
    mut config: Config,
    listener: TcpListener,
    roles: Roles,
) -> anyhow::Result<Running> {
    if roles.recognizer {
        imgpipe_recognizer::check_setup(&config.recognizer)?; // before DATA_DIR is touched
    }
    let addr = listener.local_addr()?;
    let base_url = config.base_url(addr);
    crate::access::prepare(&mut config, roles, addr)?;
    let deps = backends::open(&config, addr, &base_url).await?;
    crate::access::first_key(&config, roles, &deps).await?;
    declare_queues(&deps).await?;
    let parts = roles.parts(&config, &deps).await?;
    let s3 = match roles.serves_s3(&config) {
        true => Some(imgpipe_s3_server::router(
            EmbeddedS3Config::from_config(&config),
            deps.bus.clone(),
        )?),
        false => None,
    };
    let mut app = web::router(&deps, roles, &config.access, s3);
    let mut workers = Vec::new();
    for part in parts {
        app = app.merge(part.routes);
        workers.extend(part.workers);
    }
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let stop = shutdown.clone().cancelled_owned();
    let app = crate::headers::layer(app, &config.access);
    // The peer address feeds the upload API's per-client rate limit.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    tasks.spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(stop);
        server.await.context("HTTP server failed")
    });
    if roles.writes_objects() {
        ensure_buckets(&config, &deps).await?;
    }
    for spec in workers {
        let run = worker(spec, &config, &deps).run(shutdown.clone().cancelled_owned());
        tasks.spawn(async move { run.await.context("worker stopped") });
    }
    info!(%addr, %base_url, ?roles, "imgpipe started");
    let backends = deps;
    Ok(Running {
        addr,
        base_url,
        backends,
        shutdown,
        tasks,
    })
}

/// Every process declares every pipeline queue (idempotently) before it can publish: an object
/// store or upload API started before the workers must not publish into an exchange with nothing
/// bound, where the broker would drop the event.
async fn declare_queues(deps: &Deps) -> anyhow::Result<()> {
    for s in &pipeline_subscriptions() {
        let declared = deps.bus.declare(s).await;
        declared.with_context(|| format!("cannot declare queue {}", s.queue))?;
    }
    Ok(())
}

async fn ensure_buckets(config: &Config, deps: &Deps) -> anyhow::Result<()> {
    let os = &config.object_store;
    for bucket in [&os.originals_bucket, &os.renditions_bucket] {
        let made = deps.store.ensure_bucket(bucket).await;
        made.with_context(|| format!("cannot create bucket {bucket}"))?;
    }
    Ok(())
}

fn worker(spec: WorkerSpec, config: &Config, deps: &Deps) -> Worker {
    Worker {
        bus: deps.bus.clone(),
        subscription: spec.subscription,
        handler: spec.handler,
        policy: config.retry.policy(),
        concurrency: spec.concurrency,
        metrics: deps.metrics.clone(),
    }
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
