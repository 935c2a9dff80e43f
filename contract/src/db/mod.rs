//! The metadata seam: one JSON document per image. Only the metadata-store service writes, through
//! [`MetadataDb::update`], an atomic read-modify-write of one document; everything else reads.

mod cursor;
mod search;

use async_trait::async_trait;
use serde::Serialize;

use crate::document::{ImageDocument, Status};

pub use cursor::Cursor;
pub use search::{MAX_TERM_CHARS, MAX_TERMS, like_patterns};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("metadata database unavailable: {0}")]
    Unavailable(String),
    #[error("stored document is unreadable: {0}")]
    Corrupt(String),
    #[error("invalid query: {0}")]
    InvalidQuery(String),
}

/// A page request: newest first, keyset pagination.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub limit: u32,
    pub cursor: Option<Cursor>,
    pub tag: Option<String>,
    pub status: Option<Status>,
    /// Words that must all occur in the file name, tags, categories or text read in the
    /// picture (see [`like_patterns`]).
    pub q: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub items: Vec<ImageDocument>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagCount {
    pub label: String,
    pub count: u64,
}

/// The change function given to [`MetadataDb::update`]: receives the current document (None if
/// there is none) and returns the new one, or None to leave the store untouched.
pub type Change<'a> = &'a (dyn Fn(Option<ImageDocument>) -> Option<ImageDocument> + Send + Sync);

#[async_trait]
pub trait MetadataDb: Send + Sync + 'static {
    /// Atomically applies `change` to the document `id`; concurrent updates of one id serialise.
    /// Returns true when a document was written.
    async fn update(&self, id: &str, change: Change<'_>) -> Result<bool, DbError>;

    async fn get(&self, id: &str) -> Result<Option<ImageDocument>, DbError>;

    /// Newest first (`created_at`, then id, descending).
    async fn list(&self, query: &ListQuery) -> Result<Page, DbError>;

    /// How many images carry each tag label, most common first.
    async fn tag_counts(&self) -> Result<Vec<TagCount>, DbError>;

    /// Health check for readiness probes.
    async fn ping(&self) -> Result<(), DbError>;
}
