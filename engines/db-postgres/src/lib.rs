//! PostgreSQL metadata backend, with the same semantics as the SQLite one. The document is stored
//! whole as JSONB; the columns beside it (created_at, created_ms, status) and GIN indexes on the
//! document's tags and categories exist only to answer queries.

mod errors;
mod facets;
mod filter;
mod keys;
mod migrate;

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection, PgPool, Postgres, QueryBuilder, Row};

use self::errors::{on_read, on_write, unavailable};
use imgpipe_contract::config::MetadataConfig;
use imgpipe_contract::db::{
    Applied, Change, Cursor, DbError, Decision, Facets, FeedEntry, JsonPage, ListQuery, MetadataDb,
    Page, TagCount, Usage,
};
use imgpipe_contract::document::ImageDocument;

/// First key of the two-key advisory lock that serialises creators of one document id (a row
/// that does not exist yet cannot be locked with FOR UPDATE).
const CREATE_LOCK_CLASS: i32 = 0x696d_6702;

/// Single-key advisory lock taken, until commit, by every transaction that adds a change-feed
/// entry: sequence numbers are handed out at insert but become visible at commit, so without it
/// a reader could see entry 11 before entry 10 commits and never see 10.
const FEED_LOCK: i64 = 0x696d_6703;

/// Change-feed entries kept: a browser that was away for longer reloads instead of catching up.
const FEED_KEEP: i64 = 100_000;

/// How long a caller waits for a pooled connection before the database counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Metadata kept in a PostgreSQL schema of its own (`metadata.schema`), so tenants and tests can
/// share one database. Safe to use from many processes at once.
pub struct PostgresDb {
    pool: PgPool,
}

impl PostgresDb {
    /// Connects to `config.url`, creates `config.schema` if missing and brings its tables up to
    /// date. Idempotent: any number of processes may connect to the same schema, together.
    pub async fn connect(config: &MetadataConfig) -> Result<Self, DbError> {
        let options = connect_options(config)?;
        // Migrate over a connection of its own, opened directly: if the server cannot be
        // reached the error says why at once, where a pool would retry until its timeout and
        // report only that it timed out.
        let mut conn = PgConnection::connect_with(&options)
            .await
            .map_err(unavailable)?;
        migrate::run(&mut conn, &config.schema)
            .await
            .map_err(unavailable)?;
        backfill_search(&mut conn).await?;
        backfill_labels(&mut conn).await?;
        conn.close().await.map_err(unavailable)?;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options);
        Ok(PostgresDb { pool })
    }

    /// Drops `config.schema` and everything in it, irreversibly: for tests, and for removing a
    /// tenant. Succeeds if the schema does not exist.
    pub async fn drop_schema(config: &MetadataConfig) -> Result<(), DbError> {
        let mut conn = PgConnection::connect_with(&connect_options(config)?)
            .await
            .map_err(unavailable)?;
        let statement = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", config.schema);
        conn.execute(statement.as_str())
            .await
            .map_err(unavailable)?;
        conn.close().await.map_err(unavailable)?;
        Ok(())
    }

    /// Closes every pooled connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The configured URL, with every connection's search_path set to the (validated) schema so
/// queries name tables unqualified.
fn connect_options(config: &MetadataConfig) -> Result<PgConnectOptions, DbError> {
    let schema = migrate::schema_name(&config.schema)?;
    let options: PgConnectOptions = config
        .url
        .parse()
        .map_err(|e| DbError::Unavailable(format!("invalid metadata.url: {e}")))?;
    Ok(options.options([("search_path", schema)]))
}

/// Indexes documents written before search existed (migration 3), a page at a time.
async fn backfill_search(conn: &mut PgConnection) -> Result<(), DbError> {
    let mut indexed = 0usize;
    loop {
        let rows = sqlx::query(
            "SELECT id, doc::text AS doc FROM images WHERE search IS NULL ORDER BY id LIMIT 500",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(unavailable)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let id: String = row.try_get("id").map_err(unavailable)?;
            let doc = parse(row.try_get("doc").map_err(unavailable)?)?;
            sqlx::query("UPDATE images SET search = $2 WHERE id = $1")
                .bind(id)
                .bind(doc.search_text())
                .execute(&mut *conn)
                .await
                .map_err(unavailable)?;
        }
        indexed += rows.len();
    }
    if indexed > 0 {
        tracing::info!(documents = indexed, "indexed older documents for search");
    }
    Ok(())
}

/// Fills the labels and facet columns of documents written before migration 6.
async fn backfill_labels(conn: &mut PgConnection) -> Result<(), DbError> {
    let mut indexed = 0usize;
    loop {
        let rows = sqlx::query(
            "SELECT id, doc::text AS doc FROM images WHERE labels IS NULL ORDER BY id LIMIT 500",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(unavailable)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let id: String = row.try_get("id").map_err(unavailable)?;
            let doc = parse(row.try_get("doc").map_err(unavailable)?)?;
            sqlx::query(
                "UPDATE images SET labels = $2, camera = $3, month = $4, search = $5 WHERE id = $1",
            )
            .bind(id)
            .bind(doc.labels())
            .bind(doc.camera_name())
            .bind(doc.month())
            .bind(doc.search_text())
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
        }
        indexed += rows.len();
    }
    if indexed > 0 {
        tracing::info!(documents = indexed, "indexed older documents for facets");
    }
    Ok(())
}

/// Adds a change-feed entry inside `tx` (see [`FEED_LOCK`]); now and then drops the oldest.
async fn record_feed(
    tx: &mut PgConnection,
    id: &str,
    tenant: &str,
    deleted: bool,
) -> Result<(), DbError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(FEED_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(on_write)?;
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO feed (image_id, tenant, deleted) VALUES ($1, $2, $3) RETURNING seq",
    )
    .bind(id)
    .bind(tenant)
    .bind(deleted)
    .fetch_one(&mut *tx)
    .await
    .map_err(on_write)?;
    if seq % 1000 == 0 {
        sqlx::query("DELETE FROM feed WHERE seq <= $1")
            .bind(seq - FEED_KEEP)
            .execute(&mut *tx)
            .await
            .map_err(on_write)?;
    }
    Ok(())
}

fn parse(doc: &str) -> Result<ImageDocument, DbError> {
    serde_json::from_str(doc).map_err(|e| DbError::Corrupt(e.to_string()))
}

async fn select_for_update(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<ImageDocument>, DbError> {
    sqlx::query("SELECT doc::text AS doc FROM images WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(on_write)?
        .map(|row| parse(row.try_get("doc").map_err(on_write)?))
        .transpose()
}

#[async_trait]
impl MetadataDb for PostgresDb {
    async fn update(&self, id: &str, change: Change<'_>) -> Result<Applied, DbError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        // An existing row is locked by FOR UPDATE until commit, so writers of it queue.
        let mut current = select_for_update(&mut tx, id).await?;
        if current.is_none() {
            // A missing row cannot be locked: creators of one id queue on an advisory lock
            // instead, then look again, since the one ahead may have created it meanwhile.
            sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                .bind(CREATE_LOCK_CLASS)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(on_write)?;
            current = select_for_update(&mut tx, id).await?;
        }
        let next = match change(current) {
            Decision::Write(next) => next,
            Decision::Unchanged => {
                tx.rollback().await.map_err(unavailable)?;
                return Ok(Applied::Unchanged);
            }
            Decision::NotYet => {
                tx.rollback().await.map_err(unavailable)?;
                return Ok(Applied::NotYet);
            }
        };
        let json = serde_json::to_string(&next).map_err(|e| DbError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO images \
             (id, created_at, created_ms, status, doc, search, tenant, labels, camera, month) \
             VALUES ($1, $2::timestamptz, $3, $4, $5::jsonb, $6, $7, $8, $9, $10) \
             ON CONFLICT (id) DO UPDATE SET created_at = EXCLUDED.created_at, \
             created_ms = EXCLUDED.created_ms, status = EXCLUDED.status, doc = EXCLUDED.doc, \
             search = EXCLUDED.search, tenant = EXCLUDED.tenant, labels = EXCLUDED.labels, \
             camera = EXCLUDED.camera, month = EXCLUDED.month",
        )
        .bind(id)
        .bind(next.created_at.to_rfc3339())
        .bind(next.created_at.timestamp_millis())
        .bind(next.status.as_str())
        .bind(json)
        .bind(next.search_text())
        .bind(&next.tenant)
        .bind(next.labels())
        .bind(next.camera_name())
        .bind(next.month())
        .execute(&mut *tx)
        .await
        .map_err(on_write)?;
        record_feed(&mut tx, id, &next.tenant, false).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(Applied::Written)
    }

    async fn get(&self, id: &str) -> Result<Option<ImageDocument>, DbError> {
        sqlx::query("SELECT doc::text AS doc FROM images WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(on_read)?
            .map(|row| parse(row.try_get("doc").map_err(on_read)?))
            .transpose()
    }

    async fn list(&self, query: &ListQuery) -> Result<Page, DbError> {
        let page = self.list_json(query).await?;
        Ok(Page {
            items: page
                .items
                .iter()
                .map(|doc| parse(doc))
                .collect::<Result<_, _>>()?,
            next_cursor: page.next_cursor,
        })
    }

    async fn list_json(&self, query: &ListQuery) -> Result<JsonPage, DbError> {
        let limit = query.limit.clamp(1, 200);
        // Only the filters asked for go into the SQL, so each combination gets a plan that can
        // use its index (a generic plan for `$1 IS NULL OR ...` could not).
        let mut sql = QueryBuilder::<Postgres>::new(
            "SELECT id, created_ms, doc::text AS doc FROM images WHERE ",
        );
        filter::push(&mut sql, query)?;
        if let Some(cursor) = &query.cursor {
            sql.push(" AND (created_ms, id) < (")
                .push_bind(cursor.created_at_ms)
                .push(", ")
                .push_bind(cursor.id.as_str())
                .push(")");
        }
        sql.push(" ORDER BY created_ms DESC, id DESC LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let rows = sql.build().fetch_all(&self.pool).await.map_err(on_read)?;

        let mut items = Vec::with_capacity(rows.len());
        let mut last = None;
        for row in rows.iter().take(limit as usize) {
            items.push(row.try_get::<String, _>("doc").map_err(on_read)?);
            last = Some(row);
        }
        // The cursor is built from the row's own key columns, exactly what the next page's
        // comparison reads, so no item is skipped or repeated.
        let next_cursor = match last {
            Some(row) if rows.len() > limit as usize => Some(
                Cursor {
                    created_at_ms: row.try_get("created_ms").map_err(on_read)?,
                    id: row.try_get("id").map_err(on_read)?,
                }
                .encode(),
            ),
            _ => None,
        };
        Ok(JsonPage { items, next_cursor })
    }

    async fn record_upload(
        &self,
        image_id: &str,
        tenant: &str,
        key_id: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO uploads (image_id, tenant, key_id) VALUES ($1, $2, $3) \
             ON CONFLICT (image_id) DO NOTHING",
        )
        .bind(image_id)
        .bind(tenant)
        .bind(key_id)
        .execute(&self.pool)
        .await
        .map_err(on_write)?;
        Ok(())
    }

    async fn uploader(&self, image_id: &str) -> Result<Option<String>, DbError> {
        sqlx::query_scalar("SELECT key_id FROM uploads WHERE image_id = $1")
            .bind(image_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(on_read)
    }

    async fn usage(&self, tenant: &str) -> Result<Usage, DbError> {
        let row = sqlx::query(
            "SELECT count(*) AS n, \
             COALESCE(sum((doc -> 'original' ->> 'size')::bigint), 0)::bigint AS b \
             FROM images WHERE tenant = $1",
        )
        .bind(tenant)
        .fetch_one(&self.pool)
        .await
        .map_err(on_read)?;
        let count = |name: &str| -> Result<u64, DbError> {
            let n: i64 = row.try_get(name).map_err(on_read)?;
            Ok(u64::try_from(n).unwrap_or_default())
        };
        Ok(Usage {
            images: count("n")?,
            bytes: count("b")?,
        })
    }

    async fn tag_counts(&self, tenants: &[String]) -> Result<Vec<TagCount>, DbError> {
        // DISTINCT: a label listed twice on one image counts once, as in SQLite's tag table.
        let rows = sqlx::query(
            "SELECT label, count(*) AS n FROM ( \
                 SELECT DISTINCT i.id, t ->> 'label' AS label \
                 FROM images i, jsonb_array_elements(i.doc -> 'tags') t \
                 WHERE i.tenant = ANY($1) \
             ) pairs \
             WHERE label IS NOT NULL \
             GROUP BY label ORDER BY n DESC, label COLLATE \"C\" LIMIT 1000",
        )
        .bind(tenants)
        .fetch_all(&self.pool)
        .await
        .map_err(on_read)?;
        rows.iter()
            .map(|row| {
                Ok(TagCount {
                    label: row.try_get("label").map_err(on_read)?,
                    count: u64::try_from(row.try_get::<i64, _>("n").map_err(on_read)?)
                        .unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn delete(&self, id: &str) -> Result<bool, DbError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let tenant: Option<String> =
            sqlx::query_scalar("DELETE FROM images WHERE id = $1 RETURNING tenant")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(on_write)?;
        let Some(tenant) = tenant else {
            tx.rollback().await.map_err(unavailable)?;
            return Ok(false);
        };
        sqlx::query("DELETE FROM uploads WHERE image_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(on_write)?;
        sqlx::query(
            "INSERT INTO deleted_images (image_id, tenant) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(&tenant)
        .execute(&mut *tx)
        .await
        .map_err(on_write)?;
        record_feed(&mut tx, id, &tenant, true).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    async fn was_deleted(&self, id: &str) -> Result<bool, DbError> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM deleted_images WHERE image_id = $1)")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .map_err(on_read)
    }

    async fn feed(
        &self,
        after: i64,
        tenants: &[String],
        limit: u32,
    ) -> Result<Vec<FeedEntry>, DbError> {
        let rows = sqlx::query(
            "SELECT seq, image_id, tenant, deleted FROM feed \
             WHERE seq > $1 AND tenant = ANY($2) ORDER BY seq LIMIT $3",
        )
        .bind(after)
        .bind(tenants)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(on_read)?;
        rows.iter()
            .map(|r| {
                Ok(FeedEntry {
                    seq: r.try_get("seq").map_err(on_read)?,
                    image_id: r.try_get("image_id").map_err(on_read)?,
                    tenant: r.try_get("tenant").map_err(on_read)?,
                    deleted: r.try_get("deleted").map_err(on_read)?,
                })
            })
            .collect()
    }

    async fn feed_head(&self) -> Result<i64, DbError> {
        sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM feed")
            .fetch_one(&self.pool)
            .await
            .map_err(on_read)
    }

    async fn facets(&self, query: &ListQuery) -> Result<Facets, DbError> {
        facets::facets(&self.pool, query).await
    }

    async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
