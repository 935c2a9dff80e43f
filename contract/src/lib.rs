//! The imgpipe contract: what the services agree on, and nothing that runs it. Event types and
//! topics, the message envelope, the image document, configuration, and the three seam traits
//! (object store, bus, metadata database) with their error types. Engines implement the seams in
//! crates of their own (`engines/`); with the `testing` feature, [`testing`] holds the
//! conformance suite of each seam that every engine runs.

pub mod bus;
pub mod config;
pub mod db;
pub mod document;
pub mod event;
pub mod keys;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
