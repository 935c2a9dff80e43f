//! One conformance suite per seam, run against every backend. Each suite takes a factory, so a
//! new backend (RabbitMQ, PostgreSQL, another S3) joins by adding one test that calls it.

#[path = "conformance/bus.rs"]
mod bus;
mod common;
#[path = "conformance/meta.rs"]
mod meta;
#[path = "conformance/store.rs"]
mod store;

use std::sync::Arc;

use imgpipe_contract::bus::{Bus};
use imgpipe_bus_sqlite::SqliteBus;
use imgpipe_contract::db::{MetadataDb};
use imgpipe_db_sqlite::SqliteDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_bus_conforms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bus.sqlite");
    // Reopening the same file stands in for a process restart.
    let open = move || {
        let path = path.clone();
        async move { Arc::new(SqliteBus::open(&path).await.expect("open bus")) as Arc<dyn Bus> }
    };
    bus::suite(open).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_metadata_conforms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteDb::open(&dir.path().join("meta.sqlite"))
        .await
        .expect("open");
    meta::suite(Arc::new(store) as Arc<dyn MetadataDb>).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_object_store_conforms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = common::spawn(common::test_config(dir.path())).await;
    store::suite(running.backends.store.clone()).await;
    running.stop().await.expect("stop");
}
