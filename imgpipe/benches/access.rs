//! The cost of access control on the hottest API route: `POST /api/uploads` with key checks on
//! (a Bearer key, checked against the key store through its cache, and the per-key rate limit
//! bookkeeping) beside the same route with access control off, in the same run. Load comes from
//! ApacheBench (`ab`, Debian's `apache2-utils`) on the same machine.
//!
//! ```sh
//! apt-get install apache2-utils
//! cargo bench -p imgpipe --bench access [-- --requests 20000 --concurrency 32 --rounds 3]
//! ```
//!
//! Rounds alternate between the two configurations and medians are compared. The rate limit is
//! configured high enough never to refuse, so both sides do the same work but for the checks.

use std::process::Command;

use imgpipe::{Roles, start};
use imgpipe_contract::config::Config;

type Error = Box<dyn std::error::Error>;

struct Load {
    per_second: f64,
    p99_ms: f64,
    failed: u64,
}

struct Options {
    requests: u64,
    concurrency: u64,
    rounds: usize,
}

fn main() -> Result<(), Error> {
    let options = parse_args()?;
    if Command::new("ab").arg("-V").output().is_err() {
        return Err("ApacheBench not found: apt-get install apache2-utils".into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for round in 1..=options.rounds {
        for enabled in [true, false] {
            let load = runtime.block_on(measure(enabled, &options))?;
            println!(
                "round {round} access control {:3}: {:8.0} requests/s, p99 {:5.1} ms, {} failed",
                if enabled { "on" } else { "off" },
                load.per_second,
                load.p99_ms,
                load.failed
            );
            if load.failed > 0 {
                return Err(format!("{} requests failed", load.failed).into());
            }
            if enabled { &mut on } else { &mut off }.push(load);
        }
    }
    let median = |loads: &mut Vec<Load>, f: fn(&Load) -> f64| {
        let mut values: Vec<f64> = loads.iter().map(f).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let (on_rate, off_rate) = (
        median(&mut on, |l| l.per_second),
        median(&mut off, |l| l.per_second),
    );
    let (on_p99, off_p99) = (
        median(&mut on, |l| l.p99_ms),
        median(&mut off, |l| l.p99_ms),
    );
    println!(
        "\nPOST /api/uploads, {} requests at {} connections, medians of {} rounds:",
        options.requests, options.concurrency, options.rounds
    );
    println!("  access control on:  {on_rate:8.0} requests/s, p99 {on_p99:5.1} ms");
    println!("  access control off: {off_rate:8.0} requests/s, p99 {off_p99:5.1} ms");
    println!(
        "  on/off: {:.2}x the throughput ({:+.1}% overhead), {:.2}x the p99",
        on_rate / off_rate,
        (off_rate / on_rate - 1.0) * 100.0,
        on_p99 / off_p99
    );
    Ok(())
}

fn parse_args() -> Result<Options, Error> {
    let mut options = Options {
        requests: 20_000,
        concurrency: 32,
        rounds: 3,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--requests" => options.requests = value()?.parse()?,
            "--concurrency" => options.concurrency = value()?.parse()?,
            "--rounds" => options.rounds = value()?.parse::<usize>()?.max(1),
            "--bench" => {}
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(options)
}

/// Starts the upload API (with the document store, which makes the first key) on loopback and
/// loads it with `ab`.
async fn measure(enabled: bool, options: &Options) -> Result<Load, Error> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::load(None, std::iter::empty())?;
    config.listen = "127.0.0.1:0".parse()?;
    config.data_dir = dir.path().to_owned();
    config.access.enabled = enabled;
    config.upload.rate_per_minute = u32::MAX;
    config.log.filter = "warn".to_owned();
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let roles = Roles::only(|r| {
        r.upload_api = true;
        r.metadata_store = true;
        r.object_store = true;
    });
    let running = start(config, listener, roles).await?;
    let body = dir.path().join("body.json");
    std::fs::write(
        &body,
        r#"{"filename":"photo.jpg","content_type":"image/jpeg","size":2400000}"#,
    )?;
    let mut ab = tokio::process::Command::new("ab");
    ab.args(["-q", "-n", &options.requests.to_string()])
        .args(["-c", &options.concurrency.to_string()])
        .args(["-p", &body.to_string_lossy(), "-T", "application/json"]);
    if enabled {
        let key = std::fs::read_to_string(dir.path().join("admin-key"))?;
        ab.args(["-H", &format!("Authorization: Bearer {}", key.trim())]);
    }
    let output = ab
        .arg(format!("{}/api/uploads", running.base_url))
        .output()
        .await?;
    running.stop().await?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("ab failed: {}", String::from_utf8_lossy(&output.stderr)).into());
    }
    parse_ab(&text)
}

fn parse_ab(text: &str) -> Result<Load, Error> {
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim_start().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .ok_or(format!("ab printed no {prefix:?}:\n{text}"))
    };
    let non_2xx = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("Non-2xx responses:"))
        .map_or(Ok(0), |v| v.trim().parse::<u64>())?;
    // ab counts a body of another length than the first as "failed": ours differ (ids and
    // signatures), so only connection, receive and exception failures and non-2xx count.
    let broken = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix('('))
        .filter(|l| l.starts_with("Connect:"))
        .map_or(Ok(0), |line| {
            line.trim_end_matches(')')
                .split(',')
                .filter_map(|part| part.split_once(':'))
                .filter(|(kind, _)| kind.trim() != "Length")
                .map(|(_, n)| n.trim().parse::<u64>())
                .sum::<Result<u64, _>>()
        })?;
    Ok(Load {
        per_second: field("Requests per second:")?.parse()?,
        p99_ms: field("99%")?.parse()?,
        failed: broken + non_2xx,
    })
}
