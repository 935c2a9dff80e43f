//! The PostgreSQL schema: a short, append-only list of migrations applied at connect, recorded in
//! a version table inside the configured schema so each schema (tenant, test) migrates on its own.

use sqlx::{Connection, Executor, PgConnection, Row};

use imgpipe_contract::db::DbError;

/// Applied in order, each once; never edit one that has shipped, append a new one instead.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "images with newest-first, status and tag indexes",
        // `created_ms` is the millisecond value the cursor holds, so keyset comparisons are exact;
        // `created_at` keeps full precision for people querying by hand. Ids sort bytewise
        // (COLLATE "C"), as in SQLite, whatever the database's default collation.
        r#"
CREATE TABLE images (
    id TEXT COLLATE "C" PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL,
    created_ms BIGINT NOT NULL,
    status TEXT NOT NULL,
    doc JSONB NOT NULL
);
CREATE INDEX images_newest ON images (created_ms DESC, id DESC);
CREATE INDEX images_status_newest ON images (status, created_ms DESC, id DESC);
CREATE INDEX images_tags ON images USING GIN ((doc -> 'tags') jsonb_path_ops);
"#,
    ),
    (
        2,
        "index on categories, which the tag filter also matches",
        r#"
CREATE INDEX images_categories ON images USING GIN ((doc -> 'categories') jsonb_path_ops);
"#,
    ),
    (
        3,
        "search text (file name, tags, categories, text in the picture) for ?q=",
        // Filled from the document by the application (`ImageDocument::search_text`), so both
        // backends search the same words; rows written before this migration are NULL until
        // `connect` indexes them.
        r#"
ALTER TABLE images ADD COLUMN search TEXT;
"#,
    ),
    (
        4,
        "API keys (hashes only); images belong to a tenant",
        // Documents written before tenants existed belong to `default`, the tenant of the first
        // admin key.
        r#"
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    prefix TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    tenants JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
ALTER TABLE images ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
CREATE INDEX images_tenant_newest ON images (tenant, created_ms DESC, id DESC);
"#,
    ),
    (
        5,
        "which key asked for each upload (an uploader sees its own)",
        r#"
CREATE TABLE uploads (
    image_id TEXT COLLATE "C" PRIMARY KEY,
    tenant TEXT NOT NULL,
    key_id TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX uploads_by_key ON uploads (key_id);
"#,
    ),
    (
        6,
        "labels (case-insensitive tag filter, editor tags), facet columns, the change feed, deletions",
        // `labels` is NULL for rows written before this migration until `connect` fills it.
        r#"
ALTER TABLE images ADD COLUMN labels TEXT[], ADD COLUMN camera TEXT, ADD COLUMN month TEXT;
CREATE INDEX images_labels ON images USING GIN (labels);
CREATE INDEX images_tenant_month ON images (tenant, month);
CREATE INDEX images_tenant_camera ON images (tenant, camera);
CREATE TABLE feed (
    seq BIGSERIAL PRIMARY KEY,
    image_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    deleted BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX feed_tenant ON feed (tenant, seq);
CREATE TABLE deleted_images (
    image_id TEXT COLLATE "C" PRIMARY KEY,
    tenant TEXT NOT NULL,
    deleted_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
"#,
    ),
];

/// First key of the two-key advisory lock taken while migrating; the second is the schema's hash.
/// Two-key locks live apart from single-key ones, and this constant keeps them apart from the
/// per-document lock in `update`.
const MIGRATE_LOCK_CLASS: i32 = 0x696d_6701;
/// Single-key advisory lock taken while creating the `pg_trgm` extension, which is one per
/// database and so shared by every schema.
const EXTENSION_LOCK: i64 = 0x696d_6702;
/// The trigram index on the search text, when the database allows one.
const TRIGRAM_INDEX: &str = "images_search_trgm";

/// Checks `name` is a plain identifier, safe to splice into SQL: `[a-z_][a-z0-9_]*`, at most 63
/// bytes, and outside the `pg_` prefix PostgreSQL reserves.
pub(super) fn schema_name(name: &str) -> Result<&str, DbError> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
        && !name.starts_with("pg_");
    if valid {
        Ok(name)
    } else {
        Err(DbError::InvalidQuery(format!(
            "metadata.schema {name:?} is not a usable schema name: use lowercase letters, digits \
             and _, start with a letter or _, at most 63 characters, not starting with pg_"
        )))
    }
}

/// Creates `schema` if missing and applies the migrations it lacks, in one transaction.
/// Processes starting together queue on an advisory lock, so each migration runs exactly once.
pub(super) async fn run(conn: &mut PgConnection, schema: &str) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(MIGRATE_LOCK_CLASS)
        .bind(schema)
        .execute(&mut *tx)
        .await?;
    // Look before creating: CREATE SCHEMA IF NOT EXISTS still needs CREATE on the database,
    // which a least-privilege role given an existing schema does not have.
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(schema)
            .fetch_one(&mut *tx)
            .await?;
    if !exists {
        tx.execute(format!("CREATE SCHEMA \"{schema}\"").as_str())
            .await?;
    }
    // Names are unqualified from here on: the connection's search_path is the schema.
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            description TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let applied: Vec<i32> = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.try_get("version"))
        .collect::<Result<_, _>>()?;
    for (version, description, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        // No binds: sent as a simple query, which may hold several statements.
        tx.execute(*sql).await?;
        sqlx::query("INSERT INTO schema_migrations (version, description) VALUES ($1, $2)")
            .bind(version)
            .bind(description)
            .execute(&mut *tx)
            .await?;
    }
    trigram_index(&mut tx, schema).await?;
    tx.commit().await
}

/// Indexes the search text by trigrams (`pg_trgm`), so `?q=` words are looked up in the index
/// instead of read off every row. Best effort, and so not a numbered migration: the extension
/// needs the CREATE privilege on the database (or a superuser) the first time, and some
/// Postgres-compatible databases lack it; without it search still works, by reading every row,
/// and a warning says so. Tried again at every connect until it is there. The extension goes
/// into `public` (one per database, shared by every schema) unless it is installed already.
async fn trigram_index(conn: &mut PgConnection, schema: &str) -> Result<(), sqlx::Error> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(TRIGRAM_INDEX)
        .fetch_one(&mut *conn)
        .await?;
    if exists {
        return Ok(());
    }
    // A savepoint: a refusal must not abort the migrations' transaction.
    let mut attempt = conn.begin().await?;
    match create_trigram_index(&mut attempt).await {
        Ok(()) => attempt.commit().await,
        Err(e) => {
            attempt.rollback().await?;
            tracing::warn!(
                schema,
                error = %e,
                "no trigram index on the search text (pg_trgm unavailable): ?q= reads every row"
            );
            Ok(())
        }
    }
}

async fn create_trigram_index(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let installed = "SELECT quote_ident(n.nspname) FROM pg_extension e \
                     JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'";
    let mut home: Option<String> = sqlx::query_scalar(installed)
        .fetch_optional(&mut *conn)
        .await?;
    if home.is_none() {
        // Schemas migrating side by side would race to create it: one at a time, looking again
        // once it is our turn.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(EXTENSION_LOCK)
            .execute(&mut *conn)
            .await?;
        home = sqlx::query_scalar(installed)
            .fetch_optional(&mut *conn)
            .await?;
    }
    let home = match home {
        Some(home) => home,
        None => {
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public")
                .await?;
            "public".to_owned()
        }
    };
    // `home` is quoted by the server (quote_ident); the operator class is qualified because the
    // connection's search_path is only our schema.
    conn.execute(
        format!("CREATE INDEX {TRIGRAM_INDEX} ON images USING GIN (search {home}.gin_trgm_ops)")
            .as_str(),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::schema_name;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for good in ["imgpipe", "_x", "test_0189abcdef", "a1_b2"] {
            assert!(schema_name(good).is_ok(), "{good}");
        }
        let too_long = "a".repeat(64);
        for bad in [
            "",
            "1abc",
            "Imgpipe",
            "img-pipe",
            "a\"b",
            "a b",
            "pg_temp",
            too_long.as_str(),
        ] {
            assert!(schema_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn migrations_are_numbered_in_order() {
        let versions: Vec<i32> = super::MIGRATIONS.iter().map(|m| m.0).collect();
        let expected: Vec<i32> = (1..=versions.len() as i32).collect();
        assert_eq!(versions, expected);
    }
}
