//! The `imgpipe` binary run as separate OS processes, one service each, the way scale mode runs
//! them: each on its own port, configured by `IMGPIPE_*` variables, logging to a file the test
//! prints when something goes wrong.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One running `imgpipe <service>` process.
pub struct Service {
    pub name: String,
    pub base_url: String,
    child: Child,
    log: PathBuf,
}

/// Starts `imgpipe <command>` on a free port with `env` on top of the inherited environment.
/// Returns once it printed its URL and answers `/readyz` (broker and database reachable).
pub async fn start(
    name: &str,
    command: &str,
    env: &[(String, String)],
    dir: &Path,
    within: Duration,
) -> Service {
    start_on("127.0.0.1:0", name, command, env, dir, within).await
}

/// [`start`] on a given address: a process restarted on the same address keeps its clients'
/// URLs (presigned URLs name the host and port).
pub async fn start_on(
    listen: &str,
    name: &str,
    command: &str,
    env: &[(String, String)],
    dir: &Path,
    within: Duration,
) -> Service {
    let data_dir = dir.join(name);
    std::fs::create_dir_all(&data_dir).expect("data dir");
    let log = dir.join(format!("{name}.log"));
    // Appends, so that a restarted process's log follows the killed one's.
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args([command, "--listen", listen, "--data-dir"])
        .arg(&data_dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("IMGPIPE_LOG__FILTER", "info")
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("log file"))
        .stderr(file)
        .spawn()
        .expect("imgpipe binary starts");
    let mut service = Service {
        name: name.to_owned(),
        base_url: String::new(),
        child,
        log,
    };
    service.base_url = service.wait_url(within).await;
    service.wait_ready(within).await;
    service
}

impl Service {
    async fn wait_url(&mut self, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let log = self.log_text();
            if let Some(rest) = log.split("imgpipe is up: open ").nth(1) {
                let url = rest.lines().next().unwrap_or_default();
                return url.trim_end_matches('/').to_owned();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited with {status}:\n{log}", self.name);
            }
            assert!(
                Instant::now() < deadline,
                "{} did not start within {within:?}:\n{log}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        let url = format!("{}/readyz", self.base_url);
        loop {
            if let Ok(res) = reqwest::get(&url).await
                && res.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready within {within:?}:\n{}",
                self.name,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no shutdown hook runs, in-flight deliveries are simply abandoned.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// A counter or gauge from the process's `/metrics` (read with `admin_key`: metrics are for
    /// admins), summed over the series whose labels include every one of `labels` (e.g.
    /// `stage="recognizer"`).
    pub async fn metric(&self, admin_key: &str, name: &str, labels: &[&str]) -> f64 {
        let res = reqwest::Client::new()
            .get(format!("{}/metrics", self.base_url))
            .bearer_auth(admin_key)
            .send()
            .await
            .expect("metrics reachable");
        assert!(
            res.status().is_success(),
            "{}: /metrics answered {}",
            self.name,
            res.status()
        );
        let text = res.text().await.expect("metrics text");
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .filter(|l| labels.iter().all(|want| l.contains(want)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}
