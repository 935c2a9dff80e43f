//! Opens the engine of each seam that the configuration names: the one place that knows every
//! engine. Services only see the traits ([`Deps`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use imgpipe_auth::Authenticator;
use imgpipe_bus_rabbitmq::RabbitBus;
use imgpipe_bus_sqlite::SqliteBus;
use imgpipe_contract::bus::Bus;
use imgpipe_contract::config::{BusKind, Config, MetadataKind, ObjectStoreKind};
use imgpipe_contract::db::MetadataDb;
use imgpipe_contract::keys::KeyStore;
use imgpipe_contract::store::ObjectStore;
use imgpipe_db_postgres::PostgresDb;
use imgpipe_db_sqlite::SqliteDb;
use imgpipe_runtime::Deps;
use imgpipe_runtime::metrics::Metrics;
use imgpipe_s3_client::{S3Settings, S3Store};

/// How much longer than the handler timeout an embedded delivery stays leased: the worker settles
/// a timed-out message itself, so the lease only runs out when the process is gone or stuck.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// The three seams and the metrics registry, as the services hold them.
pub type Backends = Deps;

/// Opens every seam. `local` is this process's HTTP address, which serves the embedded S3
/// endpoint when the config has no external one; `public_base` is how browsers reach it.
pub async fn open(config: &Config, local: SocketAddr, public_base: &str) -> anyhow::Result<Deps> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    let (db, keys) = open_db_and_keys(config)
        .await
        .context("cannot open the metadata database")?;
    Ok(Deps {
        bus: open_bus(config).await.context("cannot open the bus")?,
        db,
        store: open_store(config, local, public_base)?,
        auth: if config.access.enabled {
            Authenticator::new(keys.clone())
        } else {
            Authenticator::disabled()
        },
        keys,
        metrics: Arc::new(Metrics::new()),
        stopping: tokio_util::sync::CancellationToken::new(),
    })
}

/// The bus the config names, for a process that consumes from it.
pub async fn open_bus(config: &Config) -> anyhow::Result<Arc<dyn Bus>> {
    Ok(match config.bus.kind {
        BusKind::Embedded => Arc::new(
            SqliteBus::open(&config.bus_path())
                .await?
                .with_lease(config.retry.policy().handler_timeout + LEASE_MARGIN),
        ),
        BusKind::Rabbitmq => {
            Arc::new(RabbitBus::connect(&config.bus, config.retry.max_attempts).await?)
        }
    })
}

/// The bus the config names, beside the process that runs the pipeline, for operations (listing
/// and replaying dead letters): the embedded queue must already exist and keeps its owner's
/// leases (see [`SqliteBus::attach`]). RabbitMQ is shared anyway, so this is [`open_bus`].
pub async fn attach_bus(config: &Config) -> anyhow::Result<Arc<dyn Bus>> {
    Ok(match config.bus.kind {
        BusKind::Embedded => Arc::new(SqliteBus::attach(&config.bus_path()).await?),
        BusKind::Rabbitmq => open_bus(config).await?,
    })
}

/// The metadata database the config names.
pub async fn open_db(config: &Config) -> anyhow::Result<Arc<dyn MetadataDb>> {
    Ok(open_db_and_keys(config).await?.0)
}

/// The metadata database the config names, as the documents' and the keys' store.
pub async fn open_db_and_keys(
    config: &Config,
) -> anyhow::Result<(Arc<dyn MetadataDb>, Arc<dyn KeyStore>)> {
    Ok(match config.metadata.kind {
        MetadataKind::Sqlite => {
            let db = Arc::new(SqliteDb::open(&config.metadata_path()).await?);
            (db.clone(), db)
        }
        MetadataKind::Postgres => {
            let db = Arc::new(PostgresDb::connect(&config.metadata).await?);
            (db.clone(), db)
        }
    })
}

/// The S3 client: the configured endpoint, or this process's own embedded one.
fn open_store(
    config: &Config,
    local: SocketAddr,
    public_base: &str,
) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let os = &config.object_store;
    let endpoint = match (os.kind, os.endpoint.is_empty()) {
        (_, false) => os.endpoint.clone(),
        (ObjectStoreKind::Embedded, true) => format!("http://{}", loopback(local)),
        (ObjectStoreKind::S3, true) => {
            anyhow::bail!("object_store.kind = \"s3\" needs object_store.endpoint")
        }
    };
    let public_endpoint = match (os.public_endpoint.is_empty(), os.kind) {
        (false, _) => os.public_endpoint.clone(),
        (true, ObjectStoreKind::Embedded) if os.endpoint.is_empty() => public_base.to_owned(),
        (true, _) => endpoint.clone(),
    };
    Ok(Arc::new(S3Store::new(&S3Settings {
        endpoint,
        public_endpoint,
        region: os.region.clone(),
        access_key: os.access_key.clone(),
        secret_key: os.secret_key.clone(),
    })))
}

/// A wildcard listen address is reached through loopback.
fn loopback(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}
