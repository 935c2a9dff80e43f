//! upload-api: hands out presigned PUT URLs so the bytes go straight from the client to object
//! storage. Each URL is scoped to one new key, the declared content type and length, and expires
//! within minutes; the request is validated (type, size) before anything is signed. For stores
//! that cannot notify, `POST /api/uploads/{id}/complete` announces the finished upload instead.

mod complete;
mod create;
mod filename;
mod quota;
mod routes;

pub use complete::COMPLETE_PER_MINUTE;
pub use filename::{filename_budget, sanitize_filename};
pub use routes::{UploadState, router};

use imgpipe_contract::config::{Config, ObjectStoreKind};
use imgpipe_runtime::{Deps, Part};

/// The upload API as a part of a process: its routes, no workers.
pub fn part(config: &Config, deps: &Deps) -> Part {
    let os = &config.object_store;
    let state = UploadState {
        store: deps.store.clone(),
        bus: deps.bus.clone(),
        bucket: os.originals_bucket.clone(),
        region: os.region.clone(),
        limits: config.upload.clone(),
        db: deps.db.clone(),
        data_dir: (os.kind == ObjectStoreKind::Embedded).then(|| config.data_dir.clone()),
        complete_per_minute: complete::complete_per_minute(config.upload.rate_per_minute),
    };
    Part::routes(router(state, deps.auth.clone()))
}
