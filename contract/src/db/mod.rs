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
    /// Only images of these tenants; none listed, none found (a caller must say whose images it
    /// may see).
    pub tenants: Vec<String>,
    /// Only images whose upload this key asked for (an uploader sees its own uploads).
    pub uploaded_by: Option<String>,
    pub limit: u32,
    pub cursor: Option<Cursor>,
    pub tag: Option<String>,
    pub status: Option<Status>,
    /// Words that must all occur in the file name, tags, categories or text read in the
    /// picture (see [`like_patterns`]).
    pub q: Option<String>,
    /// Only images of this camera, as [`ImageDocument::camera_name`] names it.
    pub camera: Option<String>,
    /// Only images of this month (`2024-05`), as [`ImageDocument::month`] files them.
    pub month: Option<String>,
}

impl ListQuery {
    /// The same query without the filter a facet counts over, so a facet shows what choosing
    /// another of its values would give (picking `status=failed` still shows how many are done).
    pub fn without(&self, facet: Facet) -> ListQuery {
        let mut q = self.clone();
        match facet {
            Facet::Status => q.status = None,
            Facet::Label => q.tag = None,
            Facet::Camera => q.camera = None,
            Facet::Month => q.month = None,
        }
        q
    }
}

/// A dimension the facets count over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facet {
    Status,
    /// Tags and categories (the `tag` filter matches both).
    Label,
    Camera,
    Month,
}

/// How many images of a query have each value of a facet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FacetCount {
    pub value: String,
    pub count: u64,
}

/// Counts per value for each facet of a query, each counted without its own filter; most
/// common first, except months (newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Facets {
    pub status: Vec<FacetCount>,
    pub categories: Vec<FacetCount>,
    pub tags: Vec<FacetCount>,
    pub cameras: Vec<FacetCount>,
    pub months: Vec<FacetCount>,
}

/// How many values of the tag facet are returned (there are a thousand model labels).
pub const FACET_TAGS: u32 = 40;

/// One entry of the change feed: a document was written or deleted. `seq` grows with every
/// entry, so a reader resumes after the last one it saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedEntry {
    pub seq: i64,
    pub image_id: String,
    pub tenant: String,
    pub deleted: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub items: Vec<ImageDocument>,
    pub next_cursor: Option<String>,
}

/// A page of documents as stored, in JSON, for serving without reading them: the list endpoint
/// is the hottest route, and parsing and printing fifty documents costs more than finding them.
#[derive(Debug, Clone)]
pub struct JsonPage {
    pub items: Vec<String>,
    pub next_cursor: Option<String>,
}

/// What a tenant stores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub images: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagCount {
    pub label: String,
    pub count: u64,
}

/// What a change function decides, given the document as stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Store this document, creating or replacing the one with its id.
    Write(Box<ImageDocument>),
    /// Leave the store as it is: the change is already there, or does not apply.
    Unchanged,
    /// Leave the store as it is for now: the change depends on one not applied yet, so whoever
    /// asked should try again later.
    NotYet,
}

impl Decision {
    pub fn write(doc: ImageDocument) -> Self {
        Decision::Write(Box::new(doc))
    }
}

/// What [`MetadataDb::update`] did, as its change function decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The document was written ([`Decision::Write`]).
    Written,
    /// Nothing was written ([`Decision::Unchanged`]).
    Unchanged,
    /// Nothing was written, and the change is still to be made ([`Decision::NotYet`]).
    NotYet,
}

/// The change function given to [`MetadataDb::update`]: receives the current document (None if
/// there is none) and decides what to do with it. What it decided comes back from `update`, so
/// the function needs no side channel of its own.
pub type Change<'a> = &'a (dyn Fn(Option<ImageDocument>) -> Decision + Send + Sync);

#[async_trait]
pub trait MetadataDb: Send + Sync + 'static {
    /// Atomically applies `change` to the document `id`; concurrent updates of one id serialise.
    /// Returns what the change decided, once it has been carried out: [`Applied::Written`] only
    /// after the write is durable, the other two having left the store untouched.
    async fn update(&self, id: &str, change: Change<'_>) -> Result<Applied, DbError>;

    async fn get(&self, id: &str) -> Result<Option<ImageDocument>, DbError>;

    /// Newest first (`created_at`, then id, descending).
    async fn list(&self, query: &ListQuery) -> Result<Page, DbError>;

    /// [`list`](Self::list), each document as its stored JSON text.
    async fn list_json(&self, query: &ListQuery) -> Result<JsonPage, DbError> {
        let page = self.list(query).await?;
        let items = page
            .items
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<_, _>>()
            .map_err(|e| DbError::Corrupt(e.to_string()))?;
        Ok(JsonPage {
            items,
            next_cursor: page.next_cursor,
        })
    }

    /// Records which key asked for an image's upload (when its URL is issued, before the object
    /// exists), so an uploader can find its own uploads. Idempotent.
    async fn record_upload(
        &self,
        image_id: &str,
        tenant: &str,
        key_id: &str,
    ) -> Result<(), DbError>;

    /// The key that asked for an image's upload, if one was recorded.
    async fn uploader(&self, image_id: &str) -> Result<Option<String>, DbError>;

    /// How many images a tenant has and how many bytes their originals take, for quotas.
    async fn usage(&self, tenant: &str) -> Result<Usage, DbError>;

    /// How many images of `tenants` carry each tag label, most common first.
    async fn tag_counts(&self, tenants: &[String]) -> Result<Vec<TagCount>, DbError>;

    /// Removes a document (and its index rows) and remembers the id as deleted; the change feed
    /// records the deletion. Whether there was one.
    async fn delete(&self, id: &str) -> Result<bool, DbError>;

    /// Whether the document `id` was deleted: events about it that arrive late (a stage still at
    /// work, a reprocess) must not bring it back.
    async fn was_deleted(&self, id: &str) -> Result<bool, DbError>;

    /// Change-feed entries after `after` (0: from the oldest kept) of `tenants`, oldest first,
    /// at most `limit`. Every write and deletion adds one; the oldest are dropped after a while
    /// (a reader that far behind reloads instead).
    async fn feed(
        &self,
        after: i64,
        tenants: &[String],
        limit: u32,
    ) -> Result<Vec<FeedEntry>, DbError>;

    /// The newest change-feed entry's `seq` (0 when there is none): where a new reader starts.
    async fn feed_head(&self) -> Result<i64, DbError>;

    /// The facet counts of the images `query` selects (its cursor and limit ignored).
    async fn facets(&self, query: &ListQuery) -> Result<Facets, DbError>;

    /// Health check for readiness probes.
    async fn ping(&self) -> Result<(), DbError>;
}
