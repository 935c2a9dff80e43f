//! The conformance suite of each seam. Every backend runs every property as its own test through
//! one macro call ([`bus_conformance!`](crate::bus_conformance),
//! [`db_conformance!`](crate::db_conformance), [`store_conformance!`](crate::store_conformance)),
//! so a new backend gets the whole suite by adding one line, and a failure names the property.

pub mod bus;
pub mod db;
pub mod store;
