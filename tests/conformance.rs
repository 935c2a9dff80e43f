//! Every seam's conformance suite (`imgpipe_contract::testing`) against the embedded backends:
//! the SQLite queue, SQLite metadata, and the object store through the embedded S3 endpoint. One
//! test per property and backend (`sqlite_bus::…`, `sqlite_db::…`, `embedded_s3::…`); a new
//! backend joins with one macro call.

mod common;

use std::sync::Arc;

use imgpipe::Running;
use imgpipe_bus_sqlite::SqliteBus;
use imgpipe_contract::bus::Bus;
use imgpipe_contract::db::MetadataDb;
use imgpipe_contract::store::ObjectStore;
use imgpipe_contract::testing::Fixture;
use imgpipe_db_sqlite::SqliteDb;
use tempfile::TempDir;

/// The embedded queue in a file of its own; reopening the file stands in for a process restart.
struct EmbeddedBus {
    dir: TempDir,
}

impl Fixture for EmbeddedBus {
    type Handle = Arc<dyn Bus>;

    async fn open(&self) -> Arc<dyn Bus> {
        let bus = SqliteBus::open(&self.dir.path().join("bus.sqlite"))
            .await
            .expect("open bus");
        Arc::new(bus)
    }
}

async fn new_embedded_bus() -> EmbeddedBus {
    EmbeddedBus {
        dir: tempfile::tempdir().expect("tempdir"),
    }
}

/// SQLite metadata in a file of its own.
struct EmbeddedDb {
    db: Arc<dyn MetadataDb>,
    _dir: TempDir,
}

impl Fixture for EmbeddedDb {
    type Handle = Arc<dyn MetadataDb>;

    async fn open(&self) -> Arc<dyn MetadataDb> {
        self.db.clone()
    }
}

async fn new_sqlite_db() -> EmbeddedDb {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = SqliteDb::open(&dir.path().join("meta.sqlite"))
        .await
        .expect("open");
    EmbeddedDb {
        db: Arc::new(db),
        _dir: dir,
    }
}

/// A pipeline whose object store is its own embedded S3 endpoint, reached through the S3 client
/// as every service reaches it; stopped after the test.
struct EmbeddedS3 {
    running: Running,
    _dir: TempDir,
}

impl Fixture for EmbeddedS3 {
    type Handle = Arc<dyn ObjectStore>;

    async fn open(&self) -> Arc<dyn ObjectStore> {
        self.running.backends.store.clone()
    }

    async fn teardown(self) {
        self.running.stop().await.expect("stop");
    }
}

async fn new_embedded_s3() -> EmbeddedS3 {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = common::spawn(common::test_config(dir.path())).await;
    EmbeddedS3 { running, _dir: dir }
}

mod sqlite_bus {
    imgpipe_contract::bus_conformance!(super::new_embedded_bus);
}

mod sqlite_db {
    imgpipe_contract::db_conformance!(super::new_sqlite_db);
}

mod embedded_s3 {
    imgpipe_contract::store_conformance!(super::new_embedded_s3);
}
