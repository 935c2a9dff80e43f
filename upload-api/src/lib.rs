//! upload-api: hands out presigned PUT URLs so the bytes go straight from the client to object
//! storage. Each URL is scoped to one new key, the declared content type and length, and expires
//! within minutes; the request is validated (type, size) before anything is signed. For stores
//! that cannot notify, `POST /api/uploads/{id}/complete` announces the finished upload instead.

mod complete;
mod create;
mod filename;
mod rate;
mod routes;

pub use filename::sanitize_filename;
pub use routes::{UploadState, router};
