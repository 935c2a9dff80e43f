//! Which services a process runs, and each one's part.

use anyhow::Context;
use imgpipe_contract::bus::Subscription;
use imgpipe_contract::config::{Config, ObjectStoreKind};
use imgpipe_runtime::{Deps, Part};

/// Which services a process runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Roles {
    /// The embedded S3 endpoint (only meaningful with `object_store.kind = "embedded"`).
    pub object_store: bool,
    /// `POST /api/uploads`.
    pub upload_api: bool,
    /// Thumbnail and preview worker.
    pub resizer: bool,
    /// Tagging worker.
    pub recognizer: bool,
    /// The document writer and the query API (`/api/images`, `/api/tags`) and the page.
    pub metadata_store: bool,
}

impl Roles {
    pub fn all() -> Self {
        Roles {
            object_store: true,
            upload_api: true,
            resizer: true,
            recognizer: true,
            metadata_store: true,
        }
    }

    pub fn only(f: impl FnOnce(&mut Roles)) -> Self {
        let mut roles = Roles::default();
        f(&mut roles);
        roles
    }

    /// The parts of the services this process runs. The recognizer comes first: it loads its
    /// models, and a missing model must stop the process before it takes any upload.
    pub async fn parts(self, config: &Config, deps: &Deps) -> anyhow::Result<Vec<Part>> {
        let mut parts = Vec::new();
        if self.recognizer {
            let part = imgpipe_recognizer::part(config, deps).await;
            parts.push(part.context("cannot start the recognizer")?);
        }
        if self.resizer {
            parts.push(imgpipe_resizer::part(config, deps));
        }
        if self.upload_api {
            parts.push(imgpipe_upload_api::part(config, deps));
        }
        if self.metadata_store {
            parts.push(imgpipe_metadata_store::part(config, deps));
        }
        Ok(parts)
    }

    /// The queues this process consumes, whose depth `/metrics` reports.
    pub fn consumed_queues(self) -> Vec<String> {
        let consumed = [
            (self.resizer, imgpipe_resizer::subscription()),
            (self.recognizer, imgpipe_recognizer::subscription()),
            (self.metadata_store, imgpipe_metadata_store::subscription()),
        ];
        consumed
            .into_iter()
            .filter_map(|(runs, s)| runs.then_some(s.queue))
            .collect()
    }

    /// Whether this process serves the embedded S3 endpoint itself.
    pub fn serves_s3(self, config: &Config) -> bool {
        let os = &config.object_store;
        self.object_store && os.kind == ObjectStoreKind::Embedded && os.endpoint.is_empty()
    }

    /// Whether this process writes objects, and so makes sure the buckets exist.
    pub fn writes_objects(self) -> bool {
        self.upload_api || self.resizer
    }
}

/// Every queue of the pipeline, consumed or not by this process.
pub fn pipeline_subscriptions() -> Vec<Subscription> {
    vec![
        imgpipe_resizer::subscription(),
        imgpipe_recognizer::subscription(),
        imgpipe_metadata_store::subscription(),
    ]
}
