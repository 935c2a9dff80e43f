//! Starts the configured services on one listener and shuts them all down on one signal, in
//! order: the workers stop taking messages and finish (or hand back) what they hold while the
//! listener still serves (in `up` the workers need the embedded S3 endpoint on it), then the
//! listener stops, giving open requests a bounded time.

use std::net::SocketAddr;
use std::time::Duration;

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
    stop_work: CancellationToken,
    stop_http: CancellationToken,
    workers: JoinSet<anyhow::Result<()>>,
    server: JoinSet<anyhow::Result<()>>,
}

/// How long open requests get once the workers have stopped.
const HTTP_DRAIN: Duration = Duration::from_secs(5);

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
    let mut app = web::router(&deps, roles, &config.access, s3.clone());
    let mut workers = Vec::new();
    for part in parts {
        app = app.merge(part.routes);
        workers.extend(part.workers);
    }
    let app = web::with_s3(web::limit_time(app, &config.server), s3);
    let app = crate::headers::layer(app, &config.access);
    let (stop_work, stop_http) = (CancellationToken::new(), deps.stopping.clone());
    let mut server = JoinSet::new();
    let (limits, stop) = (config.server.clone(), stop_http.clone().cancelled_owned());
    server.spawn(async move {
        crate::serve::serve(listener, app, &limits, stop, HTTP_DRAIN).await;
        Ok(())
    });
    if roles.writes_objects() {
        ensure_buckets(&config, &deps).await?;
    }
    let mut running = JoinSet::new();
    for spec in workers {
        let run = worker(spec, &config, &deps).run(stop_work.clone().cancelled_owned());
        running.spawn(async move { run.await.context("worker stopped") });
    }
    info!(%addr, %base_url, ?roles, "imgpipe started");
    let backends = deps;
    Ok(Running {
        addr,
        base_url,
        backends,
        stop_work,
        stop_http,
        workers: running,
        server,
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
        shutdown_grace: Duration::from_secs(config.server.shutdown_grace_secs),
    }
}

impl Running {
    /// Stops in order: workers first (in-flight messages finish within `shutdown_grace_secs` or
    /// go back to the queue), then the listener (open requests get a few seconds).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.stop_work.cancel();
        let mut first_error = drain(&mut self.workers).await;
        self.stop_http.cancel();
        if let Some(e) = drain(&mut self.server).await {
            first_error.get_or_insert(e);
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
            Some(joined) = self.workers.join_next() => return self.failed(joined).await,
            Some(joined) = self.server.join_next() => return self.failed(joined).await,
        }
        self.stop().await
    }

    async fn failed(
        self,
        joined: Result<anyhow::Result<()>, tokio::task::JoinError>,
    ) -> anyhow::Result<()> {
        let result = joined.map_err(anyhow::Error::from).and_then(|r| r);
        if let Err(e) = &result {
            error!(error = %e, "a service stopped");
        }
        self.stop().await?;
        result.and(Err(anyhow::anyhow!("a service stopped unexpectedly")))
    }
}

/// Waits for every task of a set; the first error, if any.
async fn drain(tasks: &mut JoinSet<anyhow::Result<()>>) -> Option<anyhow::Error> {
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined.map_err(anyhow::Error::from).and_then(|r| r) {
            first_error.get_or_insert(e);
        }
    }
    first_error
}
