//! The shared contract of imgpipe: event types, the image document, configuration, and the three
//! seams every service talks through (object store, bus, metadata store) with their backends.

pub mod bus;
pub mod config;
pub mod document;
pub mod event;
pub mod jpeg;
pub mod meta;
pub mod metrics;
pub mod store;
pub mod telemetry;
pub mod worker;
