//! [`Config::validate`]: values no part of the pipeline can work with, and settings that
//! contradict each other, each named by its key.

use std::path::Path;

use super::*;

impl Config {
    /// Refuses values no part of the pipeline can work with (zero sizes, counts and timeouts,
    /// out-of-range qualities and scores) and settings that contradict each other, naming each
    /// offending key. [`Config::load`] calls it; the crates rely on it instead of clamping.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Problems::default();
        self.check_web_and_store(&mut problems);
        self.check_bus_and_db(&mut problems);
        self.check_upload_and_resizer(&mut problems);
        self.check_recognizer_and_retry(&mut problems);
        problems.into_result()
    }

    fn check_web_and_store(&self, p: &mut Problems) {
        url(p, "public_url", &self.public_url, HTTP);

        let os = &self.object_store;
        if os.kind == ObjectStoreKind::S3 && os.endpoint.is_empty() {
            p.add("object_store.endpoint must be set when object_store.kind is \"s3\"");
        }
        url(p, "object_store.endpoint", &os.endpoint, HTTP);
        url(p, "object_store.public_endpoint", &os.public_endpoint, HTTP);
        not_empty(p, "object_store.region", &os.region);
        // Empty credentials are not refused here: a process serving the embedded endpoint may
        // make its own at start.
        not_empty(p, "object_store.originals_bucket", &os.originals_bucket);
        not_empty(p, "object_store.renditions_bucket", &os.renditions_bucket);
        if !os.originals_bucket.is_empty() && os.originals_bucket == os.renditions_bucket {
            p.add(format!(
                "object_store.originals_bucket and object_store.renditions_bucket must differ \
             (both are {:?}): every rendition would be taken for a new upload",
                os.originals_bucket
            ));
        }
    }

    fn check_bus_and_db(&self, p: &mut Problems) {
        let bus = &self.bus;
        if bus.kind == BusKind::Rabbitmq {
            if bus.url.is_empty() {
                p.add("bus.url must be set when bus.kind is \"rabbitmq\"");
            }
            url(p, "bus.url", &bus.url, &["amqp", "amqps"]);
        }
        not_empty(p, "bus.prefix", &bus.prefix);
        at_least_one(p, "bus.prefetch", bus.prefetch.into());

        let meta = &self.metadata;
        if meta.kind == MetadataKind::Postgres {
            if meta.url.is_empty() {
                p.add("metadata.url must be set when metadata.kind is \"postgres\"");
            }
            url(p, "metadata.url", &meta.url, &["postgres", "postgresql"]);
        }
        not_empty(p, "metadata.schema", &meta.schema);
        at_least_one(p, "metadata.max_connections", meta.max_connections.into());
    }

    fn check_upload_and_resizer(&self, p: &mut Problems) {
        let upload = &self.upload;
        at_least_one(p, "upload.max_bytes", upload.max_bytes);
        if upload.allowed_types.is_empty() {
            p.add("upload.allowed_types must list at least one type");
        }
        at_least_one(p, "upload.url_ttl_secs", upload.url_ttl_secs);
        if upload.url_ttl_secs > MAX_PRESIGN_SECS {
            p.add(format!(
                "upload.url_ttl_secs must be at most {MAX_PRESIGN_SECS} (7 days, the S3 limit \
             for presigned URLs)"
            ));
        }
        if upload.max_bytes > self.resizer.max_bytes {
            p.add(format!(
                "upload.max_bytes ({}) must not exceed resizer.max_bytes ({}): the resizer \
             would refuse uploads the API accepted",
                upload.max_bytes, self.resizer.max_bytes
            ));
        }

        let r = &self.resizer;
        at_least_one(p, "resizer.thumb_size", r.thumb_size.into());
        at_least_one(p, "resizer.preview_size", r.preview_size.into());
        if r.thumb_size > r.preview_size {
            p.add(format!(
                "resizer.thumb_size ({}) must not exceed resizer.preview_size ({})",
                r.thumb_size, r.preview_size
            ));
        }
        at_least_one(p, "resizer.max_pixels", r.max_pixels);
        at_least_one(p, "resizer.max_bytes", r.max_bytes);
        if r.decode_memory_mb < MIN_DECODE_MEMORY_MB {
            p.add(format!(
                "resizer.decode_memory_mb must be at least {MIN_DECODE_MEMORY_MB} (is {}): \
             less would refuse ordinary photos",
                r.decode_memory_mb
            ));
        }
        if !(1..=100).contains(&r.jpeg_quality) {
            p.add(format!(
                "resizer.jpeg_quality must be between 1 and 100 (is {})",
                r.jpeg_quality
            ));
        }
        at_least_one(p, "resizer.concurrency", r.concurrency as u64);
    }

    fn check_recognizer_and_retry(&self, p: &mut Problems) {
        let rc = &self.recognizer;
        path_set(p, "recognizer.model", &rc.model);
        path_set(p, "recognizer.labels", &rc.labels);
        if rc.ocr {
            path_set(p, "recognizer.ocr_det_model", &rc.ocr_det_model);
            path_set(p, "recognizer.ocr_rec_model", &rc.ocr_rec_model);
        }
        not_empty(p, "recognizer.model_name", &rc.model_name);
        at_least_one(p, "recognizer.top_k", rc.top_k as u64);
        // `intra_threads` 0 is ONNX Runtime's default (one thread per core): allowed.
        at_least_one(p, "recognizer.parallel_runs", rc.parallel_runs as u64);
        at_least_one(p, "recognizer.concurrency", rc.concurrency as u64);
        at_least_one(p, "recognizer.batch_size", rc.batch_size as u64);
        score(p, "recognizer.min_score", rc.min_score);
        score(p, "recognizer.ocr_min_score", rc.ocr_min_score);
        score(p, "recognizer.category_min_score", rc.category_min_score);

        let retry = &self.retry;
        at_least_one(p, "retry.max_attempts", retry.max_attempts.into());
        at_least_one(p, "retry.handler_timeout_secs", retry.handler_timeout_secs);
        at_least_one(
            p,
            "retry.transient_patience_secs",
            retry.transient_patience_secs,
        );

        let server = &self.server;
        at_least_one(p, "server.max_connections", server.max_connections as u64);
        at_least_one(p, "server.header_timeout_secs", server.header_timeout_secs);
        at_least_one(
            p,
            "server.request_timeout_secs",
            server.request_timeout_secs,
        );
        at_least_one(
            p,
            "server.body_idle_timeout_secs",
            server.body_idle_timeout_secs,
        );
        if retry.base_delay_ms > retry.max_delay_ms {
            p.add(format!(
                "retry.base_delay_ms ({}) must not exceed retry.max_delay_ms ({})",
                retry.base_delay_ms, retry.max_delay_ms
            ));
        }
    }
}

/// The smallest decode memory budget: a 12 MP phone photo decoded whole as RGB, with the
/// copies the renderer makes, needs about 50 MiB.
const MIN_DECODE_MEMORY_MB: u64 = 64;

/// URL schemes of the web addresses (`public_url`, the S3 endpoints).
const HTTP: &[&str] = &["http", "https"];

/// The longest lifetime S3 (and its SDK) allows a presigned URL: 7 days.
const MAX_PRESIGN_SECS: u64 = 7 * 24 * 60 * 60;

/// What [`Config::validate`] found wrong, in key order.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, problem: impl Into<String>) {
        self.0.push(problem.into());
    }

    fn into_result(self) -> Result<(), ConfigError> {
        match self.0.is_empty() {
            true => Ok(()),
            false => Err(ConfigError::Invalid(self.0.join("; "))),
        }
    }
}

fn at_least_one(p: &mut Problems, key: &str, value: u64) {
    if value < 1 {
        p.add(format!("{key} must be at least 1"));
    }
}

fn not_empty(p: &mut Problems, key: &str, value: &str) {
    if value.trim().is_empty() {
        p.add(format!("{key} must not be empty"));
    }
}

fn path_set(p: &mut Problems, key: &str, value: &Path) {
    if value.as_os_str().is_empty() {
        p.add(format!("{key} must not be empty"));
    }
}

/// A score threshold: 0 to 1 (NaN is refused too).
fn score(p: &mut Problems, key: &str, value: f32) {
    if !(0.0..=1.0).contains(&value) {
        p.add(format!("{key} must be between 0 and 1 (is {value})"));
    }
}

/// An optional URL: empty, or starting with one of `schemes` and `://`. The value is not
/// repeated in the message: URLs can hold passwords.
fn url(p: &mut Problems, key: &str, value: &str, schemes: &[&str]) {
    let scheme = value
        .split_once("://")
        .map(|(scheme, _)| scheme.to_lowercase());
    if !value.is_empty() && !scheme.is_some_and(|s| schemes.contains(&s.as_str())) {
        let schemes: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
        p.add(format!("{key} must start with {}", schemes.join(" or ")));
    }
}
