//! `cargo xtask slow-clients`: clients that hold connections without finishing requests, against
//! the release `aki-rest` with its defaults. 1,000 idle connections, 1,000 sending their headers
//! one byte every 2 s and 1,000 sending a body one byte every 2 s, for 60 s, while a good client
//! sends a request every 100 ms: how many of each are still open at the end and the good
//! client's latency. Then the server under a 1,024 open-file limit with 1,100 idle connections:
//! whether 10 good requests are answered within a second each. Fails when a slow connection
//! outlives its bound or a good request fails. The soak uses the same slow clients.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::server::{Server, free_port, get};

/// How a slow client holds its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slow {
    /// Connects and sends nothing.
    Idle,
    /// Sends a request's headers one byte at a time and never ends them.
    Headers,
    /// Sends complete headers, then the body one byte at a time.
    Body,
}

impl Slow {
    /// The three kinds.
    pub const ALL: [Slow; 3] = [Slow::Idle, Slow::Headers, Slow::Body];

    fn name(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Headers => "slow headers",
            Self::Body => "slow body",
        }
    }
}

/// One slow connection.
struct Held {
    stream: TcpStream,
    kind: Slow,
    opened: Instant,
    sent: usize,
}

/// Slow connections of the three kinds, trickled one byte per connection per [`tick`](Self::tick).
pub struct SlowClients {
    held: Vec<Held>,
    /// How long each connection the server closed had been open, by kind.
    pub closed_after: Vec<(Slow, Duration)>,
}

const HEADERS: &[u8] =
    b"POST /api/v1/embed HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nX-Padding: ";
const BODY_HEAD: &[u8] =
    b"POST /api/v1/embed HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n";

impl SlowClients {
    /// Opens `per_kind` connections of each kind to `port`.
    pub fn open(port: u16, per_kind: usize) -> Self {
        let mut clients = Self { held: Vec::new(), closed_after: Vec::new() };
        for kind in Slow::ALL {
            for _ in 0..per_kind {
                clients.connect(port, kind);
            }
        }
        clients
    }

    fn connect(&mut self, port: u16, kind: Slow) {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return };
        if kind == Slow::Body {
            let _ = stream.write_all(BODY_HEAD);
        }
        if stream.set_nonblocking(true).is_ok() {
            self.held.push(Held { stream, kind, opened: Instant::now(), sent: 0 });
        }
    }

    /// Sends one more byte on each connection and drops those the server closed; with
    /// `reopen`, opens a new one of the same kind in each one's place.
    pub fn tick(&mut self, port: u16, reopen: bool) {
        let mut closed = Vec::new();
        for (i, held) in self.held.iter_mut().enumerate() {
            let mut buffer = [0u8; 512];
            let gone = match held.stream.read(&mut buffer) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) if e.kind() == ErrorKind::WouldBlock => false,
                Err(_) => true,
            };
            let byte: &[u8] = match held.kind {
                Slow::Idle => &[],
                Slow::Headers => &HEADERS[held.sent % HEADERS.len()..][..1],
                Slow::Body => b"x",
            };
            let write_failed =
                !byte.is_empty() && held.stream.write(byte).is_err_and(|e| e.kind() != ErrorKind::WouldBlock);
            held.sent += byte.len();
            if gone || write_failed {
                closed.push(i);
            }
        }
        for i in closed.into_iter().rev() {
            let held = self.held.swap_remove(i);
            self.closed_after.push((held.kind, held.opened.elapsed()));
            if reopen {
                self.connect(port, held.kind);
            }
        }
    }

    /// Connections of `kind` still open.
    pub fn open_of(&self, kind: Slow) -> usize {
        self.held.iter().filter(|h| h.kind == kind).count()
    }

    /// The longest a connection of `kind` stayed open before the server closed it.
    pub fn longest_closed(&self, kind: Slow) -> Option<Duration> {
        self.closed_after.iter().filter(|(k, _)| *k == kind).map(|(_, d)| *d).max()
    }
}

/// A good client: a short request every 100 ms until `stop`; latencies in ms, and failures.
fn good_client(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(Vec<f64>, u64)> {
    std::thread::spawn(move || {
        let (mut latencies, mut failures) = (Vec::new(), 0);
        while !stop.load(Ordering::Relaxed) {
            let sent = Instant::now();
            match crate::server::post_json(port, "/api/v1/embed", r#"{"texts": ["a good client's query"]}"#) {
                Ok((200, _)) => latencies.push(sent.elapsed().as_secs_f64() * 1e3),
                _ => failures += 1,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        (latencies, failures)
    })
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(((p / 100.0) * values.len() as f64).ceil() as usize).or(values.last()).copied().unwrap_or(0.0)
}

/// Runs both checks and prints their tables.
pub fn run(root: &std::path::Path) -> Result<()> {
    crate::fetch_model::run()?;
    crate::run(crate::cargo().args(["build", "--release", "-p", "aki-rest"]))?;
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let binary = root.join("target/release/aki-rest");
    let model = aki_core::paths::installed_model_dir(aki_core::paths::DEFAULT_MODEL).to_string_lossy().into_owned();
    let server = Server::start(&binary, &["--model", &model, "--device", "cpu"], "/ready")?;
    let stop = Arc::new(AtomicBool::new(false));
    let good = good_client(server.port, Arc::clone(&stop));
    let mut slow = SlowClients::open(server.port, 1000);
    let opened: Vec<usize> = Slow::ALL.iter().map(|k| slow.open_of(*k)).collect();
    let started = Instant::now();
    let mut at_60 = Vec::new();
    while started.elapsed() < Duration::from_secs(75) {
        std::thread::sleep(Duration::from_secs(2));
        slow.tick(server.port, false);
        if at_60.is_empty() && started.elapsed() >= Duration::from_secs(60) {
            at_60 = Slow::ALL.iter().map(|k| slow.open_of(*k)).collect();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (mut latencies, failures) = good.join().map_err(|_| anyhow::anyhow!("the good client panicked"))?;
    let held = get(server.port, "/metrics")?
        .lines()
        .find_map(|l| l.strip_prefix("aki_connections_open ").map(str::to_string))
        .unwrap_or_default();
    println!("| kind | opened | open after 60 s | open after 75 s | longest held before the server closed it |");
    println!("|---|---:|---:|---:|---:|");
    for (i, kind) in Slow::ALL.into_iter().enumerate() {
        let longest = slow.longest_closed(kind).map_or("-".into(), |d| format!("{:.1} s", d.as_secs_f64()));
        println!("| {} | {} | {} | {} | {longest} |", kind.name(), opened[i], at_60[i], slow.open_of(kind));
    }
    let answered = latencies.len();
    let (p50, p99, max) =
        (percentile(&mut latencies, 50.0), percentile(&mut latencies, 99.0), latencies.last().copied().unwrap_or(0.0));
    println!(
        "good client: {answered} answered, {failures} failed, p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms; the server held {held} connections at the end"
    );
    let outlived = Slow::ALL.iter().any(|k| slow_outlived(*k, &at_60, &slow));
    drop(slow);
    server.stop()?;
    let locked_out = file_limit_check(&binary, &model)?;
    println!(
        "under a 1,024 open-file limit with 1,100 idle connections: {} of 10 good requests answered within 1 s",
        10 - locked_out
    );
    if failures > 0 || p99 >= 500.0 || outlived || locked_out > 0 {
        bail!(
            "slow clients: {failures} good requests failed, p99 {p99:.1} ms, a slow kind outlived its bound: {outlived}, {locked_out} locked out"
        );
    }
    Ok(())
}

/// Whether connections of `kind` outlived the default bounds: idle and slow-header ones open
/// after 60 s (15 s bound), slow bodies open after 75 s or held over 65 s (60 s from their
/// headers, and the 2-s ticks).
fn slow_outlived(kind: Slow, at_60: &[usize], slow: &SlowClients) -> bool {
    let i = Slow::ALL.iter().position(|k| *k == kind).unwrap_or(0);
    match kind {
        Slow::Idle | Slow::Headers => at_60[i] > 0,
        Slow::Body => slow.open_of(kind) > 0 || slow.longest_closed(kind).is_none_or(|d| d > Duration::from_secs(65)),
    }
}

/// `aki-rest` under `ulimit -n 1024` with 1,100 idle connections open: how many of 10 good
/// requests were not answered within a second.
fn file_limit_check(binary: &std::path::Path, model: &str) -> Result<usize> {
    let port = free_port()?;
    let script = "ulimit -n 1024 && exec \"$0\" \"$@\"";
    let mut child = std::process::Command::new("sh")
        .args(["-c", script])
        .arg(binary)
        .args(["--port", &port.to_string(), "--model", model, "--device", "cpu"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let ready = (0..600).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        get(port, "/ready").is_ok_and(|r| r.starts_with("HTTP/1.1 200"))
    });
    if !ready {
        let _ = child.kill();
        bail!("the file-limited server never became ready");
    }
    let idle: Vec<TcpStream> = (0..1100).filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok()).collect();
    std::thread::sleep(Duration::from_millis(500));
    let mut answered = 0;
    for _ in 0..10 {
        let sent = Instant::now();
        if get(port, "/health").is_ok_and(|r| r.starts_with("HTTP/1.1 200")) && sent.elapsed() < Duration::from_secs(1)
        {
            answered += 1;
        }
    }
    drop(idle);
    let _ = child.kill();
    let _ = child.wait();
    Ok(10 - answered)
}
