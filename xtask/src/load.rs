//! `cargo xtask load [--quick] [--mixed] [--server PATH]`: the founding plan's load scenarios
//! with wrk against a real `aki-rest` (plus a medium-passage one and one at a fixed offered
//! rate), reporting requests/s, latency percentiles, errors, the server's peak resident memory
//! and CPU, then the mixed scenario (`mixed.rs`); fails loudly when the server dies.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use aki_bench_report::{LoadOutcome, MixedOutcome};
use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::server::Server;

/// One load scenario.
struct Scenario {
    name: &'static str,
    corpus: &'static str,
    connections: u32,
    seconds: u32,
    /// Offered requests/s (connections pause between requests); `None`: as fast as answered.
    rate: Option<u32>,
}

const SHORT: &str = "short_1024.txt";
const MEDIUM: &str = "medium_256.txt";

const FULL: [Scenario; 6] = [
    Scenario { name: "short-10", corpus: SHORT, connections: 10, seconds: 20, rate: None },
    Scenario { name: "short-50", corpus: SHORT, connections: 50, seconds: 30, rate: None },
    Scenario { name: "short-100", corpus: SHORT, connections: 100, seconds: 30, rate: None },
    Scenario { name: "short-200", corpus: SHORT, connections: 200, seconds: 60, rate: None },
    Scenario { name: "short-100-at-100rps", corpus: SHORT, connections: 100, seconds: 30, rate: Some(100) },
    Scenario { name: "medium-10", corpus: MEDIUM, connections: 10, seconds: 30, rate: None },
];

const QUICK: [Scenario; 4] = [
    Scenario { name: "short-10", corpus: SHORT, connections: 10, seconds: 3, rate: None },
    Scenario { name: "short-50", corpus: SHORT, connections: 50, seconds: 3, rate: None },
    Scenario { name: "short-20-at-20rps", corpus: SHORT, connections: 20, seconds: 3, rate: Some(20) },
    Scenario { name: "medium-10", corpus: MEDIUM, connections: 10, seconds: 3, rate: None },
];

/// The `AKI_RESULT` line `scripts/load_embed.lua` prints at the end of a wrk run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WrkResult {
    requests: u64,
    duration_us: u64,
    non2xx: u64,
    connect_errors: u64,
    read_errors: u64,
    write_errors: u64,
    timeouts: u64,
    p50_us: u64,
    p95_us: u64,
    p99_us: u64,
    #[allow(dead_code)]
    max_us: u64,
}

/// What one run of `cargo xtask load` measured.
pub struct Measured {
    /// The wrk scenarios, in order.
    pub scenarios: Vec<LoadOutcome>,
    /// The mixed scenario.
    pub mixed: MixedOutcome,
}

/// Runs the scenarios (`quick`: seconds each, on the dev build; `mixed_only`: the mixed
/// scenario alone) against `binary` (built first when `None`) and prints a table.
pub fn run(root: &Path, quick: bool, mixed_only: bool, binary: Option<&Path>) -> Result<Measured> {
    ensure_wrk()?;
    let profile = if quick { "debug" } else { "release" };
    let built = root.join("target").join(profile).join("aki-rest");
    if binary.is_none() {
        let mut build = crate::cargo();
        if quick {
            // The build `cargo test` makes, so a smoke run after the tests compiles nothing.
            build.args(["test", "--workspace", "--all-targets", "--no-run"]);
        } else {
            build.args(["build", "--release", "-p", "aki-rest"]);
        }
        crate::run(&mut build)?;
    }
    let model = aki_core::paths::installed_model_dir(aki_core::paths::DEFAULT_MODEL).to_string_lossy().into_owned();
    let mut server = Server::start(binary.unwrap_or(&built), &["--model", &model, "--device", "cpu"], "/ready")?;
    let scenarios: &[Scenario] = match (quick, mixed_only) {
        (_, true) => &[],
        (true, false) => &QUICK,
        (false, false) => &FULL,
    };
    let mut outcomes = Vec::new();
    for scenario in scenarios {
        let outcome = measure(root, &mut server, scenario)?;
        println!(
            "{:<19} {:>4} conns {:>3} s: {:>7.1} req/s  p50 {:>7.1} ms  p95 {:>7.1} ms  p99 {:>7.1} ms  non-2xx {}  socket errors {}  peak RSS {:.0} MiB  CPU {:.2} cores",
            outcome.scenario,
            outcome.connections,
            outcome.seconds,
            outcome.requests_per_s,
            outcome.p50_ms,
            outcome.p95_ms,
            outcome.p99_ms,
            outcome.non_2xx,
            outcome.socket_errors,
            outcome.peak_rss_mib,
            outcome.cpu_cores
        );
        if outcome.requests_per_s == 0.0 {
            println!("warning: {} completed no request in {} s", outcome.scenario, outcome.seconds);
        }
        outcomes.push(outcome);
    }
    let mixed = crate::mixed::run(&mut server, root, if quick { &crate::mixed::QUICK } else { &crate::mixed::FULL })?;
    let stopped = server.stop()?;
    if !stopped.success() {
        bail!("aki-rest did not exit cleanly after the load: {stopped}");
    }
    Ok(Measured { scenarios: outcomes, mixed })
}

/// Installs wrk with apt-get when it is missing.
pub fn ensure_wrk() -> Result<()> {
    if Command::new("wrk").arg("--version").output().is_ok() {
        return Ok(());
    }
    println!("wrk is missing; installing the Debian package");
    let installed = Command::new("apt-get").args(["install", "-y", "-q", "wrk"]).status();
    if !installed.is_ok_and(|s| s.success()) {
        let _ = Command::new("apt-get").args(["update", "-q"]).status();
        let retried = Command::new("apt-get").args(["install", "-y", "-q", "wrk"]).status();
        if !retried.is_ok_and(|s| s.success()) {
            bail!("wrk is needed for load tests: install it (Debian/Ubuntu: `apt-get install wrk`)");
        }
    }
    Ok(())
}

fn measure(root: &Path, server: &mut Server, scenario: &Scenario) -> Result<LoadOutcome> {
    let cpu_before = server.cpu_seconds()?;
    let started = Instant::now();
    let mut wrk = Command::new("wrk");
    if let Some(rate) = scenario.rate {
        wrk.env("AKI_LOAD_RATE", rate.to_string()).env("AKI_LOAD_CONNECTIONS", scenario.connections.to_string());
    }
    let output = wrk
        .args(["-t", "2", "-c", &scenario.connections.to_string(), "-d", &format!("{}s", scenario.seconds)])
        .args(["--timeout", "30s", "-s"])
        .arg(root.join("scripts/load_embed.lua"))
        .arg(format!("{}/", server.url()))
        .env("AKI_LOAD_CORPUS", root.join("benches/data").join(scenario.corpus))
        .output()
        .context("running wrk")?;
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(status) = server.exited()? {
        bail!("aki-rest died during scenario {} ({status})", scenario.name);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("wrk failed: {}{}", stdout, String::from_utf8_lossy(&output.stderr));
    }
    let line = stdout.lines().find_map(|l| l.strip_prefix("AKI_RESULT ")).context("wrk printed no AKI_RESULT line")?;
    let wrk: WrkResult = serde_json::from_str(line).with_context(|| format!("reading {line}"))?;
    let cpu = server.cpu_seconds()? - cpu_before;
    Ok(LoadOutcome {
        scenario: scenario.name.to_string(),
        connections: scenario.connections,
        seconds: scenario.seconds,
        offered_rate: scenario.rate,
        requests_per_s: wrk.requests as f64 / (wrk.duration_us as f64 / 1e6),
        p50_ms: wrk.p50_us as f64 / 1e3,
        p95_ms: wrk.p95_us as f64 / 1e3,
        p99_ms: wrk.p99_us as f64 / 1e3,
        non_2xx: wrk.non2xx,
        socket_errors: wrk.connect_errors + wrk.read_errors + wrk.write_errors + wrk.timeouts,
        peak_rss_mib: server.peak_rss_kib()? as f64 / 1024.0,
        cpu_cores: cpu / elapsed,
    })
}
