//! Embedded metadata backend: SQLite in WAL mode. The document is stored whole as JSON; the
//! columns beside it (created_at, status, the tag and category tables) exist only to index
//! queries.

mod facets;
mod filter;
mod keys;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use imgpipe_contract::db::{
    Applied, Change, Cursor, DbError, Decision, Facets, FeedEntry, JsonPage, ListQuery, MetadataDb,
    Page, TagCount, Usage,
};

use crate::filter::{bind_all, page_sql};

/// Change-feed entries kept: a browser that was away for longer reloads instead of catching up.
const FEED_KEEP: i64 = 100_000;
use imgpipe_contract::document::ImageDocument;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS images_newest ON images (created_at DESC, id DESC);
CREATE TABLE IF NOT EXISTS image_tags (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    PRIMARY KEY (image_id, label)
);
CREATE INDEX IF NOT EXISTS image_tags_label ON image_tags (label);
CREATE TABLE IF NOT EXISTS image_categories (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    PRIMARY KEY (image_id, name)
);
CREATE INDEX IF NOT EXISTS image_categories_name ON image_categories (name);
CREATE TABLE IF NOT EXISTS image_search (
    image_id TEXT PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS image_labels (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    PRIMARY KEY (image_id, label)
);
CREATE INDEX IF NOT EXISTS image_labels_label ON image_labels (label);
CREATE TABLE IF NOT EXISTS feed (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS feed_tenant ON feed (tenant, seq);
CREATE TABLE IF NOT EXISTS deleted_images (
    image_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    deleted_at INTEGER NOT NULL
);
"#;

pub struct SqliteDb {
    pool: SqlitePool,
}

impl SqliteDb {
    pub async fn open(path: &Path) -> Result<Self, DbError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        sqlx::raw_sql(SCHEMA)
            .execute(&pool)
            .await
            .map_err(unavailable)?;
        sqlx::raw_sql(keys::SCHEMA)
            .execute(&pool)
            .await
            .map_err(unavailable)?;
        add_tenant_column(&pool).await?;
        add_facet_columns(&pool).await?;
        backfill_search(&pool).await?;
        backfill_facets(&pool).await?;
        Ok(SqliteDb { pool })
    }
}

/// Databases made before tenants existed gain the column; their images belong to `default`.
async fn add_tenant_column(pool: &SqlitePool) -> Result<(), DbError> {
    let has: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info('images') WHERE name = 'tenant')",
    )
    .fetch_one(pool)
    .await
    .map_err(unavailable)?;
    if !has {
        sqlx::raw_sql(
            "ALTER TABLE images ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default'; \
             CREATE INDEX IF NOT EXISTS images_tenant_newest ON images (tenant, created_at DESC, id DESC);",
        )
        .execute(pool)
        .await
        .map_err(unavailable)?;
    }
    Ok(())
}

impl SqliteDb {
    /// Closes the pool, checkpointing the write-ahead log into the database file.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Stores many documents in one transaction, replacing any with the same id: for bringing
    /// a library in at once (and for benchmarks), where a transaction per document would spend
    /// its time waiting on the disk.
    pub async fn import(&self, docs: &[ImageDocument]) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        for doc in docs {
            write(&mut tx, &doc.id, doc).await?;
            record_feed(&mut tx, &doc.id, &doc.tenant, false).await?;
        }
        tx.commit().await.map_err(unavailable)
    }
}

/// The columns facets group by, which databases made before facets lack.
async fn add_facet_columns(pool: &SqlitePool) -> Result<(), DbError> {
    let has: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info('images') WHERE name = 'month')",
    )
    .fetch_one(pool)
    .await
    .map_err(unavailable)?;
    if !has {
        sqlx::raw_sql(
            "ALTER TABLE images ADD COLUMN camera TEXT; \
             ALTER TABLE images ADD COLUMN month TEXT;",
        )
        .execute(pool)
        .await
        .map_err(unavailable)?;
    }
    // No index on them: SQLite, without statistics, would prefer a (tenant, camera) index to
    // the newest-first one for a plain list and sort the whole tenant for every page.
    sqlx::raw_sql(
        "DROP INDEX IF EXISTS images_tenant_month; DROP INDEX IF EXISTS images_tenant_camera;",
    )
    .execute(pool)
    .await
    .map_err(unavailable)?;
    Ok(())
}

/// Rewrites the index rows of documents stored before facets and editor tags existed (their
/// `month` is empty), so the filters find them too.
async fn backfill_facets(pool: &SqlitePool) -> Result<(), DbError> {
    let rows = sqlx::query("SELECT id, doc FROM images WHERE month IS NULL")
        .fetch_all(pool)
        .await
        .map_err(unavailable)?;
    for row in &rows {
        let doc = parse(row.get("doc"))?;
        let mut tx = pool.begin().await.map_err(unavailable)?;
        write(&mut tx, &doc.id, &doc).await?;
        tx.commit().await.map_err(unavailable)?;
    }
    if !rows.is_empty() {
        tracing::info!(documents = rows.len(), "indexed older documents for facets");
    }
    Ok(())
}

/// Indexes documents written before search existed, so `?q=` finds them too.
async fn backfill_search(pool: &SqlitePool) -> Result<(), DbError> {
    let rows = sqlx::query(
        "SELECT i.id, i.doc FROM images i \
         WHERE NOT EXISTS (SELECT 1 FROM image_search s WHERE s.image_id = i.id)",
    )
    .fetch_all(pool)
    .await
    .map_err(unavailable)?;
    for row in &rows {
        let doc = parse(row.get("doc"))?;
        sqlx::query("INSERT OR REPLACE INTO image_search (image_id, body) VALUES (?, ?)")
            .bind(row.get::<String, _>("id"))
            .bind(doc.search_text())
            .execute(pool)
            .await
            .map_err(unavailable)?;
    }
    if !rows.is_empty() {
        tracing::info!(documents = rows.len(), "indexed older documents for search");
    }
    Ok(())
}

fn parse(doc: &str) -> Result<ImageDocument, DbError> {
    serde_json::from_str(doc).map_err(|e| DbError::Corrupt(e.to_string()))
}

#[async_trait]
impl MetadataDb for SqliteDb {
    async fn update(&self, id: &str, change: Change<'_>) -> Result<Applied, DbError> {
        // BEGIN IMMEDIATE takes the write lock up front, so read-modify-write cannot interleave.
        // As a sqlx transaction it is rolled back whenever it is not committed (an error, a
        // failed COMMIT, a panic in `change`, a dropped future), so no connection goes back to
        // the pool still holding the lock.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable)?;
        let current = sqlx::query("SELECT doc FROM images WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?
            .map(|row| parse(row.get("doc")))
            .transpose()?;
        let next = match change(current) {
            Decision::Write(next) => next,
            Decision::Unchanged => return finish_reading(tx, Applied::Unchanged).await,
            Decision::NotYet => return finish_reading(tx, Applied::NotYet).await,
        };
        write(&mut tx, id, &next).await?;
        record_feed(&mut tx, id, &next.tenant, false).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(Applied::Written)
    }

    async fn get(&self, id: &str) -> Result<Option<ImageDocument>, DbError> {
        let row = sqlx::query("SELECT doc FROM images WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|r| parse(r.get("doc"))).transpose()
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
        let (sql, args) = page_sql(query, limit)?;
        let rows = bind_all(sqlx::query(&sql), args)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        let more = rows.len() > limit as usize;
        let rows = &rows[..rows.len().min(limit as usize)];
        // The cursor is built from the row's own key columns, exactly what the next page's
        // comparison reads, so no item is skipped or repeated.
        let next_cursor = rows.last().filter(|_| more).map(|row| {
            Cursor {
                created_at_ms: row.get("created_at"),
                id: row.get("id"),
            }
            .encode()
        });
        Ok(JsonPage {
            items: rows.iter().map(|r| r.get::<String, _>("doc")).collect(),
            next_cursor,
        })
    }

    async fn record_upload(
        &self,
        image_id: &str,
        tenant: &str,
        key_id: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT OR IGNORE INTO uploads (image_id, tenant, key_id, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(image_id)
        .bind(tenant)
        .bind(key_id)
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn uploader(&self, image_id: &str) -> Result<Option<String>, DbError> {
        sqlx::query_scalar("SELECT key_id FROM uploads WHERE image_id = ?")
            .bind(image_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)
    }

    async fn usage(&self, tenant: &str) -> Result<Usage, DbError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(SUM(json_extract(doc, '$.original.size')), 0) AS b \
             FROM images WHERE tenant = ?",
        )
        .bind(tenant)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(Usage {
            images: u64::try_from(row.get::<i64, _>("n")).unwrap_or_default(),
            bytes: u64::try_from(row.get::<i64, _>("b")).unwrap_or_default(),
        })
    }

    async fn tag_counts(&self, tenants: &[String]) -> Result<Vec<TagCount>, DbError> {
        let rows = sqlx::query(
            "SELECT t.label, COUNT(*) AS n FROM image_tags t JOIN images i ON i.id = t.image_id \
             WHERE i.tenant IN (SELECT value FROM json_each(?1)) \
             GROUP BY t.label ORDER BY n DESC, t.label LIMIT 1000",
        )
        .bind(tenants_json(tenants)?)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(rows
            .iter()
            .map(|r| TagCount {
                label: r.get("label"),
                count: r.get::<i64, _>("n") as u64,
            })
            .collect())
    }

    async fn delete(&self, id: &str) -> Result<bool, DbError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable)?;
        let tenant: Option<String> =
            sqlx::query_scalar("DELETE FROM images WHERE id = ? RETURNING tenant")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable)?;
        let Some(tenant) = tenant else {
            return Ok(false);
        };
        sqlx::query("DELETE FROM uploads WHERE image_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        sqlx::query(
            "INSERT OR IGNORE INTO deleted_images (image_id, tenant, deleted_at) VALUES (?, ?, ?)",
        )
        .bind(id)
        .bind(&tenant)
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        record_feed(&mut tx, id, &tenant, true).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    async fn was_deleted(&self, id: &str) -> Result<bool, DbError> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM deleted_images WHERE image_id = ?)")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)
    }

    async fn feed(
        &self,
        after: i64,
        tenants: &[String],
        limit: u32,
    ) -> Result<Vec<FeedEntry>, DbError> {
        let rows = sqlx::query(
            "SELECT seq, image_id, tenant, deleted FROM feed \
             WHERE seq > ? AND tenant IN (SELECT value FROM json_each(?)) ORDER BY seq LIMIT ?",
        )
        .bind(after)
        .bind(tenants_json(tenants)?)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(rows
            .iter()
            .map(|r| FeedEntry {
                seq: r.get("seq"),
                image_id: r.get("image_id"),
                tenant: r.get("tenant"),
                deleted: r.get("deleted"),
            })
            .collect())
    }

    async fn feed_head(&self) -> Result<i64, DbError> {
        sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM feed")
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)
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

/// Ends a transaction that wrote nothing. Its answer stands even if the ROLLBACK fails: the
/// transaction then rolls back when dropped, before the connection is used again.
async fn finish_reading(
    tx: sqlx::Transaction<'_, sqlx::Sqlite>,
    applied: Applied,
) -> Result<Applied, DbError> {
    if let Err(e) = tx.rollback().await {
        tracing::warn!(error = %e, "rollback of a read-only update failed");
    }
    Ok(applied)
}

/// Stores `next` as document `id` with its index rows, inside the caller's transaction.
async fn write(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    id: &str,
    next: &ImageDocument,
) -> Result<(), DbError> {
    let json = serde_json::to_string(next).map_err(|e| DbError::Corrupt(e.to_string()))?;
    sqlx::query(
        "INSERT INTO images (id, created_at, status, doc, tenant, camera, month) \
         VALUES (?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT(id) DO UPDATE SET created_at = excluded.created_at, status = excluded.status, \
         doc = excluded.doc, tenant = excluded.tenant, camera = excluded.camera, \
         month = excluded.month",
    )
    .bind(id)
    .bind(next.created_at.timestamp_millis())
    .bind(next.status.as_str())
    .bind(json)
    .bind(&next.tenant)
    .bind(next.camera_name())
    .bind(next.month())
    .execute(&mut **tx)
    .await
    .map_err(unavailable)?;
    sqlx::query("DELETE FROM image_tags WHERE image_id = ?")
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
    for tag in &next.tags {
        sqlx::query("INSERT OR IGNORE INTO image_tags (image_id, label) VALUES (?, ?)")
            .bind(id)
            .bind(&tag.label)
            .execute(&mut **tx)
            .await
            .map_err(unavailable)?;
    }
    sqlx::query("DELETE FROM image_categories WHERE image_id = ?")
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
    for category in &next.categories {
        sqlx::query("INSERT OR IGNORE INTO image_categories (image_id, name) VALUES (?, ?)")
            .bind(id)
            .bind(&category.name)
            .execute(&mut **tx)
            .await
            .map_err(unavailable)?;
    }
    // An editor's tags count among the tags (facets, tag counts) like the model's.
    for label in &next.editor_tags {
        sqlx::query("INSERT OR IGNORE INTO image_tags (image_id, label) VALUES (?, ?)")
            .bind(id)
            .bind(label)
            .execute(&mut **tx)
            .await
            .map_err(unavailable)?;
    }
    sqlx::query("DELETE FROM image_labels WHERE image_id = ?")
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
    for label in next.labels() {
        sqlx::query("INSERT OR IGNORE INTO image_labels (image_id, label) VALUES (?, ?)")
            .bind(id)
            .bind(label)
            .execute(&mut **tx)
            .await
            .map_err(unavailable)?;
    }
    sqlx::query("INSERT OR REPLACE INTO image_search (image_id, body) VALUES (?, ?)")
        .bind(id)
        .bind(next.search_text())
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// Adds a change-feed entry, inside the caller's transaction; now and then drops the oldest.
async fn record_feed(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    id: &str,
    tenant: &str,
    deleted: bool,
) -> Result<(), DbError> {
    let seq = sqlx::query("INSERT INTO feed (image_id, tenant, deleted) VALUES (?, ?, ?)")
        .bind(id)
        .bind(tenant)
        .bind(deleted)
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?
        .last_insert_rowid();
    if seq % 1000 == 0 {
        sqlx::query("DELETE FROM feed WHERE seq <= ?")
            .bind(seq - FEED_KEEP)
            .execute(&mut **tx)
            .await
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Tenants as a JSON array, for `json_each`.
fn tenants_json(tenants: &[String]) -> Result<String, DbError> {
    serde_json::to_string(tenants).map_err(|e| DbError::InvalidQuery(e.to_string()))
}

/// A database error: the file is locked, busy or unreadable; worth a retry.
pub(crate) fn unavailable(e: sqlx::Error) -> DbError {
    DbError::Unavailable(e.to_string())
}
