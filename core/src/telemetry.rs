//! Tracing set-up and W3C trace context helpers. The subscriber is built in one place so binaries
//! choose its format and tests can leave it off.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (human or JSON lines on stderr). Safe to call twice: the second
/// call is a no-op, which lets in-process tests start several pipelines.
pub fn init(filter: &str, json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// A new W3C `traceparent` (version 00, sampled) for a trace that starts here (an upload).
pub fn new_traceparent() -> String {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let span = &uuid::Uuid::new_v4().simple().to_string()[..16];
    format!("00-{trace}-{span}-01")
}

/// The trace id part of a `traceparent`, if well-formed.
pub fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.split('-');
    let (_version, trace) = (parts.next()?, parts.next()?);
    (trace.len() == 32).then_some(trace)
}
