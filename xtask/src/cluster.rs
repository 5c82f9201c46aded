//! `cargo xtask cluster`: three `aki-rest` replicas on loopback behind nginx (keepalive
//! upstreams; a failed attempt, a timeout or a 503 goes to the next replica, POST included: an
//! embedding request is idempotent), wrk at 200 connections for 60 s, and meanwhile a rolling
//! restart (SIGTERM one replica, wait until it has drained and exited, start it again, then the
//! next) and one SIGKILL. Reports requests served, failures and requests per replica. The
//! replicas share the machine's cores: this shows failover, not scaling.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::server::{Server, free_port};

const REPLICAS: usize = 3;
const CONNECTIONS: u32 = 200;
const SECONDS: u64 = 60;

/// The result of the run.
pub fn run(root: &Path) -> Result<()> {
    crate::deploy::ensure_packages(&["nginx"])?;
    crate::load::ensure_wrk()?;
    crate::run(crate::cargo().args(["build", "--release", "-p", "aki-rest"]))?;
    let work = root.join("target").join("cluster");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("logs"))?;
    let binary = root.join("target/release/aki-rest");
    let model = aki_core::paths::installed_model_dir(aki_core::paths::DEFAULT_MODEL).to_string_lossy().into_owned();
    // Each replica keeps accepting for a second after SIGTERM (nginx has no readiness probe:
    // it learns from refused connections), then drains for up to 30 s.
    let config = work.join("aki.toml");
    std::fs::write(&config, "[limits]\nshutdown_delay_secs = 1\nshutdown_timeout_secs = 30\n")?;
    let config = config.to_string_lossy().into_owned();
    let args = ["--model", model.as_str(), "--device", "cpu", "--config", config.as_str()];
    let ports: Vec<u16> = (0..REPLICAS).map(|_| free_port()).collect::<Result<_>>()?;
    let mut replicas: Vec<Option<Server>> =
        ports.iter().map(|&port| Server::start_on(&binary, port, &args).map(Some)).collect::<Result<_>>()?;
    let front = free_port()?;
    let nginx = start_nginx(&work, front, &ports)?;
    let mut nginx = Guard(nginx);

    let started = Instant::now();
    let wrk = Command::new("wrk")
        .args(["-t", "2", "-c", &CONNECTIONS.to_string(), "-d", &format!("{SECONDS}s"), "--timeout", "30s", "-s"])
        .arg(root.join("scripts/load_embed.lua"))
        .arg(format!("http://127.0.0.1:{front}/"))
        .env("AKI_LOAD_CORPUS", root.join("benches/data/short_1024.txt"))
        .stdout(Stdio::piped())
        .spawn()
        .context("starting wrk")?;
    let mut events = Vec::new();
    let at = |secs: u64| started + Duration::from_secs(secs);
    std::thread::sleep(at(8).saturating_duration_since(Instant::now()));
    // Rolling restart: one replica at a time, each back and ready before the next goes.
    let rolling = (epoch(), 0.0);
    let mut windows = vec![("rolling restart", rolling)];
    for (i, &port) in ports.iter().enumerate() {
        let replica = replicas[i].take().context("replica running")?;
        let signalled = started.elapsed();
        let status = replica.stop()?;
        let drained = started.elapsed();
        replicas[i] = Some(Server::start_on(&binary, port, &args)?);
        events.push(format!(
            "replica {i} (:{port}): SIGTERM at {:.1} s, drained and exited ({status}) at {:.1} s, ready again at {:.1} s",
            signalled.as_secs_f64(),
            drained.as_secs_f64(),
            started.elapsed().as_secs_f64()
        ));
    }
    windows[0].1.1 = epoch();
    std::thread::sleep(at(SECONDS * 3 / 4).saturating_duration_since(Instant::now()));
    let victim = replicas[0].take().context("replica running")?;
    let killed = started.elapsed();
    let kill_started = epoch();
    victim.kill()?;
    replicas[0] = Some(Server::start_on(&binary, ports[0], &args)?);
    // Requests in flight on the killed replica end within the 30 s timeout at most.
    windows.push(("SIGKILL and restart", (kill_started, epoch() + 2.0)));
    events.push(format!(
        "replica 0 (:{}): SIGKILL at {:.1} s, ready again at {:.1} s",
        ports[0],
        killed.as_secs_f64(),
        started.elapsed().as_secs_f64()
    ));
    let output = wrk.wait_with_output().context("waiting for wrk")?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    nginx.stop();
    for replica in replicas.into_iter().flatten() {
        replica.stop()?;
    }
    report(&work, &stdout, &events, &windows, &ports)
}

/// Seconds since the Unix epoch, as nginx's `$msec` writes them.
fn epoch() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Kills nginx when dropped.
struct Guard(Child);

impl Guard {
    fn stop(&mut self) {
        let _ = Command::new("kill").args(["-QUIT", &self.0.id().to_string()]).status();
        let _ = self.0.wait();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

/// nginx in front of `ports` on `front`, its files under `work`.
fn start_nginx(work: &Path, front: u16, ports: &[u16]) -> Result<Child> {
    let upstreams: String =
        ports.iter().map(|p| format!("        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;\n")).collect();
    let conf = format!(
        "worker_processes 1;\n\
         pid {work}/nginx.pid;\n\
         error_log {work}/logs/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n\
             log_format upstreams '$msec $status \"$upstream_addr\" \"$upstream_status\"';\n\
             access_log {work}/logs/access.log upstreams;\n\
             client_body_temp_path {work}/body; proxy_temp_path {work}/proxy;\n\
             fastcgi_temp_path {work}/fastcgi; uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;\n\
             upstream aki {{\n{upstreams}        keepalive 64;\n    }}\n\
             server {{\n\
                 listen 127.0.0.1:{front};\n\
                 location / {{\n\
                     proxy_pass http://aki;\n\
                     proxy_http_version 1.1;\n\
                     proxy_set_header Connection \"\";\n\
                     proxy_next_upstream error timeout http_503 non_idempotent;\n\
                     proxy_next_upstream_tries 3;\n\
                     proxy_connect_timeout 2s;\n\
                     proxy_read_timeout 30s;\n\
                 }}\n\
             }}\n\
         }}\n",
        work = work.display()
    );
    let path = work.join("nginx.conf");
    std::fs::write(&path, conf)?;
    let child = Command::new("nginx")
        .arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(work)
        .args(["-g", "daemon off;"])
        .spawn()
        .context("starting nginx")?;
    let until = Instant::now() + Duration::from_secs(10);
    while crate::server::get(front, "/health").map_or(true, |r| !r.starts_with("HTTP/1.1 200")) {
        if Instant::now() > until {
            bail!("nginx did not come up on {front}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(child)
}

fn report(work: &Path, wrk: &str, events: &[String], windows: &[(&str, (f64, f64))], ports: &[u16]) -> Result<()> {
    let line = wrk.lines().find_map(|l| l.strip_prefix("AKI_RESULT ")).context("wrk printed no AKI_RESULT line")?;
    let result: serde_json::Value = serde_json::from_str(line)?;
    let number = |key: &str| result[key].as_u64().unwrap_or(0);
    let socket = number("connect_errors") + number("read_errors") + number("write_errors") + number("timeouts");
    // nginx's view: the status it answered, and the replica that gave the final answer.
    let log = std::fs::read_to_string(work.join("logs/access.log")).unwrap_or_default();
    let mut per_replica: BTreeMap<String, u64> = BTreeMap::new();
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut failed_in: Vec<u64> = vec![0; windows.len()];
    let mut retried = 0u64;
    for entry in log.lines() {
        let mut parts = entry.splitn(3, ' ');
        let (Some(time), Some(status), Some(rest)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let upstreams = rest.split('"').nth(1).unwrap_or_default();
        *statuses.entry(status.to_string()).or_default() += 1;
        let answered = upstreams.rsplit(", ").next().unwrap_or(upstreams);
        *per_replica.entry(answered.to_string()).or_default() += 1;
        retried += u64::from(upstreams.contains(','));
        let time: f64 = time.parse().unwrap_or(0.0);
        for (failed, (_, (from, to))) in failed_in.iter_mut().zip(windows) {
            if status != "200" && (*from..=*to).contains(&time) {
                *failed += 1;
            }
        }
    }
    println!(
        "\ncluster: {REPLICAS} replicas of aki-rest behind nginx, wrk {CONNECTIONS} connections for {SECONDS} s\n"
    );
    for event in events {
        println!("- {event}");
    }
    println!("\n| requests | requests/s | p50 ms | p99 ms | non-2xx (wrk) | socket errors (wrk) | retried by nginx |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {:.0} | {:.1} | {:.1} | {} | {socket} | {retried} |",
        number("requests"),
        number("requests") as f64 / (number("duration_us") as f64 / 1e6),
        number("p50_us") as f64 / 1e3,
        number("p99_us") as f64 / 1e3,
        number("non2xx"),
    );
    println!("\n| window | requests nginx answered with an error |\n|---|---:|");
    for ((name, _), failed) in windows.iter().zip(&failed_in) {
        println!("| {name} | {failed} |");
    }
    println!("\n| nginx status | count |\n|---|---:|");
    for (status, count) in &statuses {
        println!("| {status} | {count} |");
    }
    if statuses.contains_key("499") {
        println!("\n499: the client closed the connection first (wrk stops with requests still in flight).");
    }
    println!("\n| answered by | requests |\n|---|---:|");
    for (replica, count) in &per_replica {
        let name = ports
            .iter()
            .position(|p| replica.ends_with(&format!(":{p}")))
            .map_or(replica.clone(), |i| format!("replica {i} ({replica})"));
        println!("| {name} | {count} |");
    }
    let failed = number("non2xx") + socket;
    if failed > 0 {
        bail!("{failed} requests failed; nginx's error log: {}", work.join("logs/error.log").display());
    }
    Ok(())
}
