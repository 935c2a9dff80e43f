//! API keys in PostgreSQL (`api_keys`, migration 4): hashes only.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use imgpipe_contract::keys::{KeyError, KeyRecord, KeyStore};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::PostgresDb;

const COLUMNS: &str = "id, prefix, hash, name, role, tenants, created_at, revoked_at";

#[async_trait]
impl KeyStore for PostgresDb {
    async fn create_key(&self, key: &KeyRecord) -> Result<(), KeyError> {
        let inserted = sqlx::query(
            "INSERT INTO api_keys (id, prefix, hash, name, role, tenants, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(&key.id)
        .bind(&key.prefix)
        .bind(&key.hash)
        .bind(&key.name)
        .bind(key.role.as_str())
        .bind(sqlx::types::Json(&key.tenants))
        .bind(key.created_at)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        if inserted.rows_affected() == 0 {
            return Err(KeyError::Duplicate);
        }
        Ok(())
    }

    async fn key_by_prefix(&self, prefix: &str) -> Result<Option<KeyRecord>, KeyError> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE prefix = $1");
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
        let sql = format!(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 \
             RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(at)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref()
            .map(record)
            .transpose()?
            .ok_or_else(|| KeyError::NotFound(id.to_owned()))
    }
}

fn record(row: &PgRow) -> Result<KeyRecord, KeyError> {
    let role: String = row.try_get("role").map_err(unavailable)?;
    let tenants: sqlx::types::Json<Vec<String>> = row.try_get("tenants").map_err(unavailable)?;
    Ok(KeyRecord {
        id: row.try_get("id").map_err(unavailable)?,
        prefix: row.try_get("prefix").map_err(unavailable)?,
        hash: row.try_get("hash").map_err(unavailable)?,
        name: row.try_get("name").map_err(unavailable)?,
        role: role.parse().map_err(KeyError::Unavailable)?,
        tenants: tenants.0,
        created_at: row.try_get("created_at").map_err(unavailable)?,
        revoked_at: row.try_get("revoked_at").map_err(unavailable)?,
    })
}

fn unavailable(e: sqlx::Error) -> KeyError {
    KeyError::Unavailable(e.to_string())
}
