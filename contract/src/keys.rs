//! API keys: who may do what, for which tenants. The seam is [`KeyStore`], implemented by each
//! metadata database engine (keys live beside the documents, so every process sees a revocation
//! at its next lookup). Only a key's hash is stored; the key itself is shown once, at creation.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a key may do. Each role includes the rights of the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Asks for upload URLs and sees its own uploads.
    Uploader,
    /// Browses, searches, edits and deletes the images of its tenant.
    Editor,
    /// Manages keys, reprocessing and dead letters, for every tenant it is given.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Uploader => "uploader",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "uploader" => Ok(Role::Uploader),
            "editor" => Ok(Role::Editor),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?} (uploader, editor or admin)"
            )),
        }
    }
}

/// A tenant name: 1 to 40 characters of `a-z`, `0-9` and `-`, starting with a letter or digit.
/// Tenants are part of object keys, so the alphabet is what every S3 and every file system
/// accepts unchanged.
pub fn valid_tenant(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
}

/// A stored key: everything but the secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Stable id, used to revoke.
    pub id: String,
    /// The key's visible prefix (`ipk_XXXXXXXX`), for people to tell keys apart.
    pub prefix: String,
    /// SHA-256 of the whole key, hex. Never serialised to clients.
    #[serde(skip_serializing)]
    pub hash: String,
    pub name: String,
    pub role: Role,
    /// The tenants the key acts for: exactly one for uploaders and editors, one or more for
    /// admins. The first is the tenant its uploads belong to.
    pub tenants: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl KeyRecord {
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key database unavailable: {0}")]
    Unavailable(String),
    #[error("a key with this prefix already exists")]
    Duplicate,
    #[error("no key {0}")]
    NotFound(String),
}

/// Where keys are kept.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// Stores a new key (its prefix must be unused).
    async fn create_key(&self, key: &KeyRecord) -> Result<(), KeyError>;

    /// The key with this visible prefix, revoked or not.
    async fn key_by_prefix(&self, prefix: &str) -> Result<Option<KeyRecord>, KeyError>;

    /// Every key, newest first.
    async fn list_keys(&self) -> Result<Vec<KeyRecord>, KeyError>;

    /// Marks a key revoked (idempotent); `NotFound` for an unknown id.
    async fn revoke_key(&self, id: &str, at: DateTime<Utc>) -> Result<KeyRecord, KeyError>;
}
