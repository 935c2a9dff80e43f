//! The object-store conformance suite (`imgpipe_contract::testing::store`) against SeaweedFS, an
//! S3 server we did not write, installed from PyPI by `scripts/setup.sh`: the project's S3
//! client (`S3Store`) must hold every property on it as on the embedded endpoint
//! (`tests/conformance.rs`), so "any S3" is tested, not assumed. One server per test.

mod common;

use std::sync::Arc;

use common::seaweed::Seaweed;
use imgpipe_contract::store::ObjectStore;
use imgpipe_contract::testing::Fixture;

/// A SeaweedFS server reached through the S3 client, as every service reaches its store.
struct SeaweedStore {
    seaweed: Seaweed,
}

impl Fixture for SeaweedStore {
    type Handle = Arc<dyn ObjectStore>;

    async fn open(&self) -> Arc<dyn ObjectStore> {
        self.seaweed.store()
    }
}

async fn new_seaweedfs() -> SeaweedStore {
    SeaweedStore {
        seaweed: Seaweed::start().await,
    }
}

mod seaweedfs {
    imgpipe_contract::store_conformance!(super::new_seaweedfs);
}
