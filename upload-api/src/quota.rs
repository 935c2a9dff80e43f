//! Room for one more upload: the tenant's quota (images and bytes of originals) and, in the
//! embedded mode, the free space of the disk that holds the objects, the queue and the database.

use std::path::Path;

use axum::http::StatusCode;
use axum::response::Response;
use tracing::warn;

use crate::routes::{UploadState, refuse};

/// None when `size` more bytes fit; else the refusal, with the reason.
pub(crate) async fn check(state: &UploadState, tenant: &str, size: u64) -> Option<Response> {
    let limits = &state.limits;
    if let Some(dir) = &state.data_dir
        && let Some(free) = free_bytes(dir)
        && free.saturating_sub(size) < limits.min_free_bytes
    {
        warn!(
            free,
            min = limits.min_free_bytes,
            "refusing uploads: disk nearly full"
        );
        return Some(refuse(
            StatusCode::INSUFFICIENT_STORAGE,
            "the server's disk is nearly full; uploads are paused until space is freed",
        ));
    }
    if limits.quota_images == 0 && limits.quota_bytes == 0 {
        return None;
    }
    let usage = match state.db.usage(tenant).await {
        Ok(usage) => usage,
        Err(e) => {
            warn!(error = %e, "cannot read the tenant's usage");
            return Some(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot check the storage quota now; try again",
            ));
        }
    };
    if limits.quota_images > 0 && usage.images >= limits.quota_images {
        return Some(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "over quota: tenant {tenant} stores {} of its {} images",
                usage.images, limits.quota_images
            ),
        ));
    }
    if limits.quota_bytes > 0 && usage.bytes.saturating_add(size) > limits.quota_bytes {
        return Some(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "over quota: tenant {tenant} stores {} of its {} bytes; this file needs {size} more",
                usage.bytes, limits.quota_bytes
            ),
        ));
    }
    None
}

/// Free bytes for unprivileged users on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}
