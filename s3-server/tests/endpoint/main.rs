//! The embedded S3 endpoint, served on a real socket and driven by the SDK clients the services
//! use and by a plain HTTP client standing in for a browser.

mod events;
mod helpers;
mod http_edges;
mod integrity;
mod presigned;
mod round_trip;
mod slow_body;
