/// Which services a process runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Roles {
    /// The embedded S3 endpoint (only meaningful with `object_store.kind = "embedded"`).
    pub object_store: bool,
    /// `POST /api/uploads`.
    pub upload_api: bool,
    /// Thumbnail and preview worker.
    pub resizer: bool,
    /// Tagging worker.
    pub recognizer: bool,
    /// The document writer and the query API (`/api/images`, `/api/tags`) and the page.
    pub metadata_store: bool,
}

impl Roles {
    pub fn all() -> Self {
        Roles {
            object_store: true,
            upload_api: true,
            resizer: true,
            recognizer: true,
            metadata_store: true,
        }
    }

    pub fn only(f: impl FnOnce(&mut Roles)) -> Self {
        let mut roles = Roles::default();
        f(&mut roles);
        roles
    }
}
