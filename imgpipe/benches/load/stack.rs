//! The pipeline under load, as real processes of the `imgpipe` binary: either `imgpipe up`
//! (embedded: one process, SQLite bus and database, its own S3 endpoint) or scale mode (one
//! process per service on this machine's RabbitMQ and PostgreSQL, two resizers and two
//! recognizers).

use std::path::Path;
use std::time::Duration;

use imgpipe_contract::config::{BusConfig, Config, MetadataConfig};

use crate::common::engines::{Vhost, fresh_postgres, rabbitmqctl};
use crate::common::{admin_key, repo_root};
use crate::services::{self, Service};

const START: Duration = Duration::from_secs(90);
const PREFIX: &str = "imgpipe";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Embedded,
    Scale,
}

pub struct Stack {
    pub mode: Mode,
    pub services: Vec<Service>,
    /// Upload API and query API (the same process in embedded mode).
    pub api: String,
    pub query: String,
    pub admin_key: String,
    /// How a tool beside the pipeline reaches its bus.
    pub bus: Config,
    env: Vec<(String, String)>,
    listen: String,
    vhost: Option<Vhost>,
    pub postgres: Option<MetadataConfig>,
}

/// Settings every process gets: the real models, bounded retries.
fn base_env(max_attempts: u32) -> Vec<(String, String)> {
    let model = |key: &str, file: &str| {
        (
            format!("IMGPIPE_RECOGNIZER__{key}"),
            repo_root().join("models").join(file).display().to_string(),
        )
    };
    vec![
        (
            "IMGPIPE_RETRY__MAX_ATTEMPTS".into(),
            max_attempts.to_string(),
        ),
        ("IMGPIPE_RETRY__BASE_DELAY_MS".into(), "200".into()),
        ("IMGPIPE_RETRY__MAX_DELAY_MS".into(), "1000".into()),
        ("IMGPIPE_RECOGNIZER__INTRA_THREADS".into(), "1".into()),
        model("MODEL", "efficientnet-lite0.onnx"),
        model("LABELS", "efficientnet-lite0.labels.txt"),
        model("ONNXRUNTIME", "libonnxruntime.so"),
        model("OCR_DET_MODEL", "ocr/PP-OCRv6_det_small.onnx"),
        model("OCR_REC_MODEL", "ocr/PP-OCRv6_rec_small.onnx"),
    ]
}

impl Stack {
    pub async fn start(mode: Mode, dir: &Path, max_attempts: u32) -> Stack {
        match mode {
            Mode::Embedded => Self::embedded(dir, max_attempts).await,
            Mode::Scale => Self::scale(dir, max_attempts).await,
        }
    }

    async fn embedded(dir: &Path, max_attempts: u32) -> Stack {
        let env = base_env(max_attempts);
        // A fixed port, so that the process restarted after its SIGKILL keeps its clients' URLs.
        let listen = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .to_string();
        let up = services::start_on(&listen, "up", "up", &env, dir, START).await;
        let mut bus = Config::load(None, std::iter::empty()).expect("default config");
        bus.data_dir = dir.join("up");
        Stack {
            mode: Mode::Embedded,
            api: up.base_url.clone(),
            query: up.base_url.clone(),
            admin_key: admin_key(&dir.join("up")),
            services: vec![up],
            bus,
            env,
            listen,
            vhost: None,
            postgres: None,
        }
    }

    async fn scale(dir: &Path, max_attempts: u32) -> Stack {
        let vhost = Vhost::create();
        let pg = fresh_postgres();
        let bus_config = BusConfig {
            prefix: PREFIX.to_owned(),
            ..vhost.config()
        };
        let mut env = base_env(max_attempts);
        env.extend([
            ("IMGPIPE_BUS__KIND".into(), "rabbitmq".into()),
            ("IMGPIPE_BUS__URL".into(), bus_config.url.clone()),
            ("IMGPIPE_BUS__PREFIX".into(), PREFIX.into()),
            ("IMGPIPE_BUS__PREFETCH".into(), "4".into()),
            ("IMGPIPE_METADATA__KIND".into(), "postgres".into()),
            ("IMGPIPE_METADATA__URL".into(), pg.url.clone()),
            ("IMGPIPE_METADATA__SCHEMA".into(), pg.schema.clone()),
            (
                "IMGPIPE_OBJECT_STORE__ACCESS_KEY".into(),
                "load-access".into(),
            ),
            (
                "IMGPIPE_OBJECT_STORE__SECRET_KEY".into(),
                uuid::Uuid::new_v4().simple().to_string(),
            ),
        ]);
        let store = services::start("object-store", "object-store", &env, dir, START).await;
        env.push(("IMGPIPE_OBJECT_STORE__KIND".into(), "s3".into()));
        env.push((
            "IMGPIPE_OBJECT_STORE__ENDPOINT".into(),
            store.base_url.clone(),
        ));
        let meta = services::start("metadata-store", "metadata-store", &env, dir, START).await;
        let api = services::start("upload-api", "upload-api", &env, dir, START).await;
        let (api_url, query) = (api.base_url.clone(), meta.base_url.clone());
        let mut services = vec![store, meta, api];
        for n in 1..=2 {
            services
                .push(services::start(&format!("resizer-{n}"), "resizer", &env, dir, START).await);
            services.push(
                services::start(&format!("recognizer-{n}"), "recognizer", &env, dir, START).await,
            );
        }
        let mut bus = Config::load(None, std::iter::empty()).expect("default config");
        bus.bus = bus_config;
        Stack {
            mode: Mode::Scale,
            services,
            api: api_url,
            query,
            admin_key: admin_key(&dir.join("metadata-store")),
            bus,
            env,
            listen: String::new(),
            vhost: Some(vhost),
            postgres: Some(pg),
        }
    }

    /// SIGKILLs a worker: the one process in embedded mode (then starts it again on the same
    /// address and data), `resizer-1` in scale mode (left dead: its peer takes over).
    pub async fn kill_a_worker(&mut self, dir: &Path) -> String {
        match self.mode {
            Mode::Embedded => {
                self.services[0].kill();
                let up = services::start_on(&self.listen, "up", "up", &self.env, dir, START).await;
                self.services[0] = up;
                "up (restarted)".to_owned()
            }
            Mode::Scale => {
                let victim = self
                    .services
                    .iter_mut()
                    .find(|s| s.name == "resizer-1")
                    .expect("resizer-1 runs");
                victim.kill();
                victim.name.clone()
            }
        }
    }

    /// Closes every broker connection once (scale mode); the embedded bus has none to cut.
    pub fn cut_broker(&self) -> bool {
        match &self.vhost {
            Some(vhost) => {
                rabbitmqctl(&["close_all_connections", "--vhost", &vhost.name, "load test"]);
                true
            }
            None => false,
        }
    }

    /// Names of the processes that are not running (the killed one excepted by the caller).
    pub fn stopped(&mut self) -> Vec<String> {
        self.services
            .iter_mut()
            .filter_map(|s| (!s.is_running()).then(|| s.name.clone()))
            .collect()
    }

    pub fn log_tails(&self) -> String {
        self.services
            .iter()
            .map(|s| {
                let log = s.log_text();
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(10)..].join("\n");
                format!("--- {} ---\n{tail}", s.name)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}
