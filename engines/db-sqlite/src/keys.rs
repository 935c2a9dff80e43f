//! API keys in SQLite (`api_keys`): hashes only.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use imgpipe_contract::keys::{KeyError, KeyRecord, KeyStore};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::SqliteDb;

/// Created when the database opens.
pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    prefix TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    tenants TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS uploads (
    image_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    key_id TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads (key_id);
"#;

const COLUMNS: &str = "id, prefix, hash, name, role, tenants, created_at, revoked_at";

#[async_trait]
impl KeyStore for SqliteDb {
    async fn create_key(&self, key: &KeyRecord) -> Result<(), KeyError> {
        let tenants = serde_json::to_string(&key.tenants)
            .map_err(|e| KeyError::Unavailable(e.to_string()))?;
        let inserted = sqlx::query(
            "INSERT OR IGNORE INTO api_keys (id, prefix, hash, name, role, tenants, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.id)
        .bind(&key.prefix)
        .bind(&key.hash)
        .bind(&key.name)
        .bind(key.role.as_str())
        .bind(tenants)
        .bind(key.created_at.to_rfc3339())
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        if inserted.rows_affected() == 0 {
            return Err(KeyError::Duplicate);
        }
        Ok(())
    }

    async fn key_by_prefix(&self, prefix: &str) -> Result<Option<KeyRecord>, KeyError> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE prefix = ?");
        let row = sqlx::query(&sql)
            .bind(prefix)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(record).transpose()
    }

    async fn list_keys(&self) -> Result<Vec<KeyRecord>, KeyError> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys ORDER BY created_at DESC, id DESC");
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(record).collect()
    }

    async fn revoke_key(&self, id: &str, at: DateTime<Utc>) -> Result<KeyRecord, KeyError> {
        sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?")
            .bind(at.to_rfc3339())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref()
            .map(record)
            .transpose()?
            .ok_or_else(|| KeyError::NotFound(id.to_owned()))
    }
}

fn record(row: &SqliteRow) -> Result<KeyRecord, KeyError> {
    let corrupt = |e: String| KeyError::Unavailable(format!("unreadable key row: {e}"));
    let role: String = row.try_get("role").map_err(unavailable)?;
    let tenants: String = row.try_get("tenants").map_err(unavailable)?;
    let created_at: String = row.try_get("created_at").map_err(unavailable)?;
    let revoked_at: Option<String> = row.try_get("revoked_at").map_err(unavailable)?;
    let time = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| corrupt(e.to_string()))
    };
    Ok(KeyRecord {
        id: row.try_get("id").map_err(unavailable)?,
        prefix: row.try_get("prefix").map_err(unavailable)?,
        hash: row.try_get("hash").map_err(unavailable)?,
        name: row.try_get("name").map_err(unavailable)?,
        role: role.parse().map_err(corrupt)?,
        tenants: serde_json::from_str(&tenants).map_err(|e| corrupt(e.to_string()))?,
        created_at: time(&created_at)?,
        revoked_at: revoked_at.as_deref().map(time).transpose()?,
    })
}

fn unavailable(e: sqlx::Error) -> KeyError {
    KeyError::Unavailable(e.to_string())
}
