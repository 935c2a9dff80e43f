//! Prometheus metrics: one registry per process (so in-process tests do not share counters),
//! filled by the worker runtime and rendered by `/metrics`.

use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The pipeline's metrics.
pub struct Metrics {
    registry: Registry,
    /// Messages settled, by stage and outcome (`ok`, `retry`, `dead`).
    processed: IntCounterVec,
    /// Handler latency, by stage.
    latency: HistogramVec,
    /// Messages being handled now, by stage.
    in_flight: IntGaugeVec,
    /// Unsettled messages per queue, set at scrape time.
    queue_depth: IntGaugeVec,
}

/// How a message was settled.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Ok,
    Retry,
    Dead,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Retry => "retry",
            Outcome::Dead => "dead",
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("imgpipe".to_owned()), None).unwrap_or_default();
        let processed = IntCounterVec::new(
            Opts::new("messages_total", "Messages settled, by stage and outcome"),
            &["stage", "outcome"],
        )
        .expect("static metric definition");
        let latency = HistogramVec::new(
            HistogramOpts::new("handle_seconds", "Time to handle one message, by stage").buckets(
                vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ],
            ),
            &["stage"],
        )
        .expect("static metric definition");
        let in_flight = IntGaugeVec::new(
            Opts::new("in_flight", "Messages being handled, by stage"),
            &["stage"],
        )
        .expect("static metric definition");
        let queue_depth = IntGaugeVec::new(
            Opts::new("queue_depth", "Messages not yet acknowledged, by queue"),
            &["queue"],
        )
        .expect("static metric definition");
        for collector in [
            Box::new(processed.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(in_flight.clone()),
            Box::new(queue_depth.clone()),
        ] {
            // Registration only fails for duplicate names, which these are not.
            let _ = registry.register(collector);
        }
        Metrics {
            registry,
            processed,
            latency,
            in_flight,
            queue_depth,
        }
    }

    pub fn started(&self, stage: &str) {
        self.in_flight.with_label_values(&[stage]).inc();
    }

    pub fn finished(&self, stage: &str, outcome: Outcome, took: Duration) {
        self.in_flight.with_label_values(&[stage]).dec();
        self.processed
            .with_label_values(&[stage, outcome.label()])
            .inc();
        self.latency
            .with_label_values(&[stage])
            .observe(took.as_secs_f64());
    }

    pub fn set_queue_depth(&self, queue: &str, depth: u64) {
        self.queue_depth
            .with_label_values(&[queue])
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}
