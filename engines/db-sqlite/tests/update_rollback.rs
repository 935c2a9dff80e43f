//! An update that goes wrong inside its transaction must not leave the write lock behind: the
//! connection goes back to the pool, and the next update on it (or on any other connection)
//! would otherwise fail with "cannot start a transaction within a transaction" or wait out the
//! busy timeout and fail with "database is locked".

use std::sync::Arc;
use std::time::Duration;

use imgpipe_contract::db::{Applied, DbError, Decision, MetadataDb};
use imgpipe_contract::document::ImageDocument;
use imgpipe_db_sqlite::SqliteDb;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// More than the pool's connections, so every connection is used after the failure.
const UPDATES_AFTER: usize = 8;

fn doc(id: &str) -> ImageDocument {
    serde_json::from_value(serde_json::json!({
        "id": id,
        "status": "pending",
        "created_at": "2026-01-01T00:00:00Z",
        "original": {
            "bucket": "originals",
            "key": format!("default/{id}/cat.jpg"),
            "filename": "cat.jpg",
            "size": 10
        }
    }))
    .expect("a valid document")
}

async fn assert_updates_go_through(db: &SqliteDb) {
    for n in 0..UPDATES_AFTER {
        let id = format!("after-{n}");
        let next = doc(&id);
        let change = move |_: Option<ImageDocument>| Decision::write(next.clone());
        let result = tokio::time::timeout(Duration::from_secs(3), db.update(&id, &change)).await;
        assert!(
            matches!(result, Ok(Ok(Applied::Written))),
            "update {n} after the failed one: {result:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_panics_mid_transaction_leaves_no_lock_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Arc::new(
        SqliteDb::open(&dir.path().join("meta.db"))
            .await
            .expect("open"),
    );
    let failing = db.clone();
    let crashed = tokio::spawn(async move {
        let change = |_: Option<ImageDocument>| -> Decision {
            panic!("the change failed while the transaction was open")
        };
        failing.update("crashing", &change).await
    })
    .await;
    assert!(crashed.as_ref().is_err_and(|e| e.is_panic()), "{crashed:?}");
    assert_updates_go_through(&db).await;
}

/// A COMMIT that fails (as on a full disk) leaves SQLite's transaction open. Provoked here by a
/// deferred foreign key that a trigger violates: every statement succeeds, the COMMIT does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_leaves_no_lock_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("meta.db");
    let db = SqliteDb::open(&path).await.expect("open");
    let mut saboteur = SqliteConnectOptions::new()
        .filename(&path)
        .connect()
        .await
        .expect("second connection");
    sqlx::raw_sql(
        "CREATE TABLE nowhere (id TEXT PRIMARY KEY); \
         CREATE TABLE pointers (target TEXT REFERENCES nowhere(id) DEFERRABLE INITIALLY DEFERRED); \
         CREATE TRIGGER fail_at_commit AFTER INSERT ON images WHEN NEW.id = 'unlucky' \
         BEGIN INSERT INTO pointers (target) VALUES ('missing'); END;",
    )
    .execute(&mut saboteur)
    .await
    .expect("sabotage");
    saboteur.close().await.expect("close");

    let next = doc("unlucky");
    let change = move |_: Option<ImageDocument>| Decision::write(next.clone());
    let failed = db.update("unlucky", &change).await;
    assert!(
        matches!(&failed, Err(DbError::Unavailable(e)) if e.contains("FOREIGN KEY")),
        "{failed:?}"
    );
    assert_updates_go_through(&db).await;
    assert!(
        db.get("unlucky").await.expect("get").is_none(),
        "the failed write was rolled back"
    );
}
