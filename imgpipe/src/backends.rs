//! Opens the backend of each seam named by the configuration.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use imgpipe_core::bus::Bus;
use imgpipe_core::config::{Config, ObjectStoreKind};
use imgpipe_core::meta::MetadataStore;
use imgpipe_core::metrics::Metrics;
use imgpipe_core::store::{ObjectStore, S3Settings, S3Store};

/// The three seams, as the services hold them.
#[derive(Clone)]
pub struct Backends {
    pub bus: Arc<dyn Bus>,
    pub meta: Arc<dyn MetadataStore>,
    pub store: Arc<dyn ObjectStore>,
    /// This process's metrics, served at `/metrics`.
    pub metrics: Arc<Metrics>,
}

impl Backends {
    /// `local` is this process's HTTP address, which serves the embedded S3 endpoint when the
    /// config has no external one; `public_base` is how browsers reach it.
    pub async fn open(
        config: &Config,
        local: SocketAddr,
        public_base: &str,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
        let bus = imgpipe_core::bus::open(config)
            .await
            .context("cannot open the bus")?;
        let meta = imgpipe_core::meta::open(config)
            .await
            .context("cannot open the metadata store")?;
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
        let store: Arc<dyn ObjectStore> = Arc::new(S3Store::new(&S3Settings {
            endpoint,
            public_endpoint,
            region: os.region.clone(),
            access_key: os.access_key.clone(),
            secret_key: os.secret_key.clone(),
        }));
        Ok(Backends {
            bus,
            meta,
            store,
            metrics: Arc::new(Metrics::new()),
        })
    }
}

/// A wildcard listen address is reached through loopback.
fn loopback(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}
