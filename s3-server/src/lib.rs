//! The embedded S3-compatible endpoint of the all-in-one mode: `s3s` serving a directory through
//! `s3s-fs`, with SigV4 (header and presigned) checked, uploads capped in size and time, digests
//! checked before an upload replaces anything, keys the backend cannot store refused, and an
//! object-created event published on the bus for every object written to a notifying bucket.
//!
//! Services reach it through the S3 client seam (`imgpipe_s3_client::S3Store`) like any other S3
//! endpoint.

mod access;
mod body_deadline;
mod config;
mod digest;
mod error;
mod fs_with_events;
mod key_limits;
mod notify;
mod upload_body;

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::error_handling::HandleError;
use http::{Method, StatusCode, header};
use imgpipe_contract::bus::Bus;
use s3s::HttpError;
use s3s::auth::SimpleAuth;
use s3s::config::{S3Config, StaticConfigProvider};
use s3s::service::S3ServiceBuilder;
use s3s_fs::FileSystem;
use tower_http::cors::{Any, CorsLayer};

pub use config::{DEFAULT_BODY_IDLE_TIMEOUT, DEFAULT_MAX_BODY_DURATION, EmbeddedS3Config};
pub use error::S3ServerError;

use body_deadline::BodyTimeouts;
use fs_with_events::FsWithEvents;
use notify::Notifier;

/// Builds the endpoint: an axum [`Router`] whose fallback service is the S3 protocol, so routes
/// merged in front of it take precedence (mind that a first path segment which is a valid bucket
/// name, such as `api`, shadows that bucket). It answers browser CORS preflights from any origin.
///
/// Creates `config.root` and the configured buckets if missing.
pub fn router(config: EmbeddedS3Config, bus: Arc<dyn Bus>) -> Result<Router, S3ServerError> {
    config.validate()?;
    config.create_dirs()?;
    let fs = FileSystem::new(&config.root).map_err(|e| S3ServerError::Backend {
        path: config.root.clone(),
        message: format!("{e:?}"),
    })?;
    let notifier = Notifier::new(bus, &config.region, &config.notify_buckets);
    let timeouts = BodyTimeouts {
        max: config.max_body_duration,
        idle: config.body_idle_timeout,
    };
    let s3 = FsWithEvents::new(fs, notifier, config.max_object_bytes, timeouts);

    let mut s3_config = S3Config::default();
    // Browser form uploads (POST object) obey the same limit as PUT.
    s3_config.post_object_max_file_size = config.max_object_bytes;
    let mut builder = S3ServiceBuilder::new(s3);
    builder.set_config(Arc::new(StaticConfigProvider::new(Arc::new(s3_config))));
    builder.set_auth(SimpleAuth::from_single(
        config.access_key.clone(),
        config.secret_key.clone(),
    ));
    builder.set_access(access::PresignedOnly {
        root: config.root.clone(),
    });
    let service = HandleError::new(builder.build(), internal_error);

    Ok(Router::new().fallback_service(service).layer(cors()))
}

/// s3s answers S3 errors itself; this only runs when it cannot even build an error response.
async fn internal_error(err: HttpError) -> Result<(StatusCode, &'static str), Infallible> {
    tracing::error!(?err, "S3 endpoint failed to answer");
    Ok((StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
}

/// Browsers upload straight to presigned URLs from the web UI's origin.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::PUT,
            Method::HEAD,
            Method::POST,
            Method::DELETE,
        ])
        .allow_headers(Any)
        .expose_headers([header::ETAG])
}
