//! The metadata conformance suite against a real PostgreSQL (127.0.0.1:5432, database `test`, or
//! `IMGPIPE_TEST_POSTGRES_URL`; one test per property, `postgres::…`), plus what only a shared
//! server can show (`postgres_…`): connecting twice to one schema is harmless, and what one pool
//! wrote another reads. Each test works in a fresh schema and drops it afterwards, whether it
//! passed or not. Without a reachable server every test fails, saying so; none is skipped.

mod common;

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use imgpipe_contract::config::{Config, MetadataConfig};
use imgpipe_contract::db::{Applied, DbError, Decision, ListQuery, MetadataDb};
use imgpipe_contract::document::{ImageDocument, Original, Status, Tag};
use imgpipe_contract::testing::Fixture;
use imgpipe_db_postgres::PostgresDb;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, PgConnection};

/// A config naming a schema no other test (or run) uses.
fn fresh_config() -> MetadataConfig {
    common::engines::fresh_postgres()
}

/// Runs `body` with a fresh schema and drops the schema after it, even when `body` panics (it runs
/// as its own task, so a panic comes back as a value), then re-raises the panic.
async fn in_fresh_schema<F, Fut>(body: F)
where
    F: FnOnce(MetadataConfig) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let config = fresh_config();
    let outcome = tokio::spawn(body(config.clone())).await;
    PostgresDb::drop_schema(&config)
        .await
        .expect("drop the test schema");
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

fn sample(id: &str, labels: &[&str]) -> ImageDocument {
    ImageDocument {
        id: id.to_owned(),
        tenant: "default".to_owned(),
        status: Status::Done,
        // Sub-millisecond precision: the store must keep the document exact.
        created_at: Utc
            .timestamp_opt(1_767_268_800, 123_456_789)
            .single()
            .expect("time"),
        original: Original {
            bucket: "originals".into(),
            key: format!("{id}/cat.jpg"),
            filename: "cat.jpg".into(),
            content_type: Some("image/jpeg".into()),
            size: 2048,
            etag: Some("etag-1".into()),
            sequencer: Some("0055AED6DCD90281E5".into()),
            format: Some("jpeg".into()),
            width: Some(640),
            height: Some(480),
            camera: None,
            earlier_etags: Vec::new(),
        },
        renditions: None,
        placeholder: Some("1QcSHQRnh493V4dIh4eXh1h4kJUI".into()),
        tags: labels
            .iter()
            .map(|l| Tag {
                label: (*l).to_owned(),
                score: 0.75,
            })
            .collect(),
        categories: Vec::new(),
        text: Vec::new(),
        model: None,
        error: None,
        editor_tags: Vec::new(),
        retrying: None,
        stages: Default::default(),
        links: None,
    }
}

async fn put(store: &PostgresDb, doc: ImageDocument) {
    let id = doc.id.clone();
    assert_eq!(
        store
            .update(&id, &move |_| Decision::write(doc.clone()))
            .await
            .expect("write"),
        Applied::Written
    );
}

/// The ids `?q=q` finds, newest first.
async fn search(store: &PostgresDb, q: &str) -> Vec<String> {
    let query = ListQuery {
        tenants: vec!["default".to_owned()],
        limit: 10,
        q: Some(q.to_owned()),
        ..ListQuery::default()
    };
    let page = store.list(&query).await.expect("search");
    page.items.into_iter().map(|d| d.id).collect()
}

/// A pool on a schema of its own, dropped after the test.
struct FreshSchema {
    config: MetadataConfig,
    store: Arc<PostgresDb>,
}

impl Fixture for FreshSchema {
    type Handle = Arc<dyn MetadataDb>;

    async fn open(&self) -> Arc<dyn MetadataDb> {
        self.store.clone()
    }

    async fn teardown(self) {
        self.store.close().await;
        PostgresDb::drop_schema(&self.config)
            .await
            .expect("drop the test schema");
    }
}

async fn new_schema() -> FreshSchema {
    let config = fresh_config();
    let store = match PostgresDb::connect(&config).await {
        Ok(store) => store,
        Err(e) => {
            // Whatever part of the schema the attempt made goes too.
            let _ = PostgresDb::drop_schema(&config).await;
            panic!("connect to PostgreSQL at {}: {e}", config.url)
        }
    };
    FreshSchema {
        config,
        store: Arc::new(store),
    }
}

mod postgres {
    imgpipe_contract::db_conformance!(super::new_schema);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_search_words_are_looked_up_in_a_trigram_index() {
    in_fresh_schema(|config| async move {
        let store = PostgresDb::connect(&config).await.expect("connect");
        put(&store, sample("striped", &["tabby"])).await;
        put(&store, sample("brewed", &["espresso"])).await;
        assert_eq!(search(&store, "TABB").await, ["striped"]);
        store.close().await;

        // The query the store sends, planned with sequential scans ruled out (on two rows the
        // planner rightly prefers reading them): only an index on the search text can serve it.
        let options = PgConnectOptions::from_str(&config.url)
            .expect("url")
            .options([("search_path", config.schema.as_str())]);
        let mut conn = PgConnection::connect_with(&options).await.expect("connect");
        conn.execute("SET enable_seqscan = off").await.expect("set");
        let plan: Vec<String> = sqlx::query_scalar(
            "EXPLAIN SELECT id FROM images WHERE TRUE AND search LIKE $1 ESCAPE '\\' \
             ORDER BY created_ms DESC, id DESC LIMIT 11",
        )
        .bind("%tabb%")
        .fetch_all(&mut conn)
        .await
        .expect("explain");
        let plan = plan.join("\n");
        assert!(plan.contains("images_search_trgm"), "{plan}");
        conn.close().await.expect("close");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_without_the_privilege_for_pg_trgm_search_still_works() {
    // A database of its own, where pg_trgm is not installed, and a role that owns its schema
    // but may not create extensions (no CREATE on the database), as a least-privilege
    // deployment is set up.
    let admin_config = fresh_config();
    let admin = PgConnectOptions::from_str(&admin_config.url).expect("url");
    let unique = uuid::Uuid::now_v7().simple().to_string();
    let (database, role) = (
        format!("imgpipe_nopriv_{unique}"),
        format!("nopriv_{unique}"),
    );
    let mut conn = PgConnection::connect_with(&admin).await.expect("admin");
    for statement in [
        format!("CREATE DATABASE {database}"),
        format!("CREATE ROLE {role} LOGIN"),
    ] {
        conn.execute(statement.as_str()).await.expect("setup");
    }
    let mut inside = PgConnection::connect_with(&admin.clone().database(&database))
        .await
        .expect("admin in the new database");
    inside
        .execute(format!("CREATE SCHEMA imgpipe AUTHORIZATION {role}").as_str())
        .await
        .expect("schema");
    inside.close().await.expect("close");

    let config = MetadataConfig {
        url: format!(
            "postgres://{role}@{}:{}/{database}",
            admin.get_host(),
            admin.get_port()
        ),
        schema: "imgpipe".to_owned(),
        ..admin_config
    };
    let outcome = tokio::spawn(async move {
        let store = PostgresDb::connect(&config)
            .await
            .expect("connects without the index");
        put(&store, sample("striped", &["tabby"])).await;
        assert_eq!(search(&store, "tabb").await, ["striped"]);
        store.close().await;
    })
    .await;

    for statement in [
        format!("DROP DATABASE {database} WITH (FORCE)"),
        format!("DROP ROLE {role}"),
    ] {
        conn.execute(statement.as_str()).await.expect("clean up");
    }
    conn.close().await.expect("close");
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connecting_again_to_a_schema_is_harmless() {
    in_fresh_schema(|config| async move {
        // Two processes starting together on a new schema: both create and migrate it.
        let (first, second) =
            tokio::join!(PostgresDb::connect(&config), PostgresDb::connect(&config));
        let (first, second) = (first.expect("first"), second.expect("second"));
        let doc = sample("again", &["cat"]);
        let written = doc.clone();
        assert_eq!(
            first
                .update("again", &move |_| Decision::write(written.clone()))
                .await
                .expect("write"),
            Applied::Written
        );
        first.close().await;
        second.close().await;

        // A restart: migrations run again and leave the data alone.
        let third = PostgresDb::connect(&config).await.expect("third");
        assert_eq!(third.get("again").await.expect("get"), Some(doc));
        third.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_another_pool_reads_what_one_wrote() {
    in_fresh_schema(|config| async move {
        let writer = PostgresDb::connect(&config).await.expect("writer");
        let doc = sample("durable", &["cat", "whiskers"]);
        let written = doc.clone();
        assert_eq!(
            writer
                .update("durable", &move |_| Decision::write(written.clone()))
                .await
                .expect("write"),
            Applied::Written
        );
        writer.close().await;

        // A separate pool opened as the binary opens it: through the config, not the type.
        let reader = imgpipe::backends::open_db(&Config {
            metadata: config.clone(),
            ..Config::default()
        })
        .await
        .expect("reader");
        assert_eq!(reader.get("durable").await.expect("get"), Some(doc));
        let page = reader
            .list(&ListQuery {
                tenants: vec!["default".to_owned()],
                limit: 10,
                tag: Some("whiskers".into()),
                ..Default::default()
            })
            .await
            .expect("list");
        assert_eq!(
            page.items.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            vec!["durable"]
        );
        let counts = reader
            .tag_counts(&["default".to_owned()])
            .await
            .expect("counts");
        assert_eq!(counts.len(), 2);
        assert!(counts.iter().all(|c| c.count == 1));
    })
    .await;
}

#[tokio::test]
async fn postgres_unreachable_server_is_unavailable_and_says_why() {
    let config = MetadataConfig {
        // Nothing listens on port 1: the connection is refused at once.
        url: "postgres://postgres@127.0.0.1:1/test".to_owned(),
        ..fresh_config()
    };
    let started = std::time::Instant::now();
    match PostgresDb::connect(&config).await {
        Err(DbError::Unavailable(why)) => assert!(why.contains("refused"), "{why}"),
        Err(other) => panic!("expected Unavailable, got {other:?}"),
        Ok(_) => panic!("connected to a closed port"),
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "fails fast"
    );
}

#[tokio::test]
async fn postgres_unusable_schema_names_are_refused() {
    let config = MetadataConfig {
        schema: "imgpipe\"; DROP TABLE images; --".to_owned(),
        ..fresh_config()
    };
    assert!(matches!(
        PostgresDb::connect(&config).await,
        Err(DbError::InvalidQuery(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_values_it_cannot_hold_fail_for_good() {
    in_fresh_schema(|config| async move {
        let store = PostgresDb::connect(&config).await.expect("connect");
        // JSONB cannot hold U+0000; retrying would fail forever, so it must not be Unavailable.
        let mut doc = sample("nul", &[]);
        doc.original.filename = "cat\u{0}.jpg".into();
        let write = store
            .update("nul", &move |_| Decision::write(doc.clone()))
            .await;
        assert!(matches!(write, Err(DbError::Corrupt(_))), "{write:?}");
        assert_eq!(store.get("nul").await.expect("get"), None);
        let list = store
            .list(&ListQuery {
                tenants: vec!["default".to_owned()],
                limit: 10,
                tag: Some("c\u{0}t".into()),
                ..Default::default()
            })
            .await;
        assert!(matches!(list, Err(DbError::InvalidQuery(_))), "{list:?}");
        let get = store.get("a\u{0}b").await;
        assert!(matches!(get, Err(DbError::InvalidQuery(_))), "{get:?}");
        store.close().await;
    })
    .await;
}
