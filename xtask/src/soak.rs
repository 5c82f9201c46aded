//! `cargo xtask soak [--minutes N]`: mixed, partly hostile traffic against the release
//! `aki-rest` for N minutes (default 10): good texts, token arrays, OpenAI base64, TEI routes,
//! bad inputs, huge inputs, over-size bodies, clients that disconnect mid-request, unique texts
//! that churn the result cache, and a second model. Reports resident memory over time (and its
//! growth after warm-up), answers by status class, p99 latency per minute (per 10 minutes in
//! runs over 10), and the slow clients alongside (idle connections, headers and bodies a byte
//! every 2 s: how many the server closed and the longest it held one); fails when the
//! server dies, answers any 5xx, grows more than 5% after warm-up, or holds a slow client past
//! its bound.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::server::Server;
use crate::slow::{Slow, SlowClients};

/// Client threads sending requests.
const CLIENTS: usize = 12;
/// Slow connections of each kind held open alongside.
const SLOW_PER_KIND: usize = 50;
/// How often resident memory is sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// What one request was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Texts,
    Base64,
    TokenArrays,
    TeiEmbed,
    Tokenize,
    SecondModel,
    CacheChurn,
    BadInput,
    HugeInput,
    OverSizeBody,
    Disconnect,
}

/// The mix, by weight.
const MIX: [(Kind, u32); 11] = [
    (Kind::Texts, 30),
    (Kind::Base64, 8),
    (Kind::TokenArrays, 8),
    (Kind::TeiEmbed, 8),
    (Kind::Tokenize, 5),
    (Kind::SecondModel, 6),
    (Kind::CacheChurn, 12),
    (Kind::BadInput, 12),
    (Kind::HugeInput, 3),
    (Kind::OverSizeBody, 2),
    (Kind::Disconnect, 6),
];

/// A small deterministic random source (xorshift), one per client.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn kind(&mut self) -> Kind {
        let total: u32 = MIX.iter().map(|(_, w)| w).sum();
        let mut pick = (self.next() % u64::from(total)) as u32;
        for (kind, weight) in MIX {
            if pick < weight {
                return kind;
            }
            pick -= weight;
        }
        Kind::Texts
    }
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    /// Answers by status code (0: socket error, or a deliberate disconnect).
    statuses: BTreeMap<(Kind, u16), u64>,
    /// Latencies of answered requests, ms, by minute.
    latencies: BTreeMap<u64, Vec<f64>>,
}

/// Runs the soak and prints (and writes under `target/soak/`) its report.
pub fn run(root: &Path, minutes: u64) -> Result<()> {
    crate::fetch_model::run()?;
    crate::run(crate::cargo().args(["build", "--release", "-p", "aki-rest"]))?;
    let work = root.join("target").join("soak");
    std::fs::create_dir_all(&work)?;
    let model = aki_core::paths::installed_model_dir(aki_core::paths::DEFAULT_MODEL);
    // A second model id: the same files under another name, so two stacks load and serve.
    let second = work.join("second-model");
    if !second.exists() {
        std::os::unix::fs::symlink(&model, &second).context("linking the second model")?;
    }
    let config = work.join("aki.toml");
    std::fs::write(
        &config,
        format!("[models]\nmodels = [{:?}]\n\n[result_cache]\nmax_bytes = 4194304\n", second.to_string_lossy()),
    )?;
    let model = model.to_string_lossy().into_owned();
    let mut server = Server::start(
        &root.join("target/release/aki-rest"),
        &["--model", &model, "--device", "cpu", "--config", &config.to_string_lossy()],
        "/ready",
    )?;
    let corpus: Arc<Vec<String>> = Arc::new(
        std::fs::read_to_string(root.join("benches/data/short_1024.txt"))?.lines().map(str::to_string).collect(),
    );
    let second = Arc::new(second.to_string_lossy().into_owned());
    let (port, started) = (server.port, Instant::now());
    let duration = Duration::from_secs(minutes * 60);
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (stop, tally, corpus, second) =
                (Arc::clone(&stop), Arc::clone(&tally), Arc::clone(&corpus), Arc::clone(&second));
            std::thread::spawn(move || {
                let mut random = Random(0x9E37_79B9_7F4A_7C15 ^ ((i as u64 + 1) * 0x1234_5678));
                while !stop.load(Ordering::Relaxed) {
                    let kind = random.kind();
                    let sent = Instant::now();
                    let status = send(port, kind, &mut random, &corpus, &second);
                    let ms = sent.elapsed().as_secs_f64() * 1e3;
                    let minute = started.elapsed().as_secs() / 60;
                    let mut tally = tally.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    *tally.statuses.entry((kind, status)).or_default() += 1;
                    if status != 0 {
                        tally.latencies.entry(minute).or_default().push(ms);
                    }
                }
            })
        })
        .collect();
    // Slow clients alongside: idle connections, headers and bodies a byte every 2 s, each
    // replaced as soon as the server closes it.
    let slow = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut slow = SlowClients::open(port, SLOW_PER_KIND);
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(2));
                slow.tick(port, true);
            }
            slow
        })
    };
    let mut rss: Vec<(f64, f64)> = Vec::new();
    while started.elapsed() < duration {
        std::thread::sleep(SAMPLE_EVERY);
        if let Some(status) = server.exited()? {
            stop.store(true, Ordering::Relaxed);
            bail!("aki-rest died during the soak ({status})");
        }
        rss.push((started.elapsed().as_secs_f64(), server.rss_kib()? as f64 / 1024.0));
        println!("{:>5.0} s  RSS {:.0} MiB", rss[rss.len() - 1].0, rss[rss.len() - 1].1);
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = client.join();
    }
    let slow = slow.join().map_err(|_| anyhow::anyhow!("the slow clients panicked"))?;
    let held = crate::server::get(port, "/metrics")
        .ok()
        .and_then(|m| m.lines().find_map(|l| l.strip_prefix("aki_connections_open ").map(str::to_string)))
        .unwrap_or_default();
    let mut slow_part = String::new();
    let outlived = slow_report(&mut slow_part, &slow, &held, minutes * 60 >= 70);
    // Their connections close before the server is asked to stop, so it need not wait on them.
    drop(slow);
    let alive = server.exited()?.is_none();
    let stopped = server.stop()?;
    let tally = tally.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut report = report(minutes, &rss, &tally, alive && stopped.success());
    report.push_str(&slow_part);
    println!("{report}");
    std::fs::write(work.join("report.md"), &report)?;
    let server_errors: u64 = tally.statuses.iter().filter(|((_, s), _)| *s >= 500).map(|(_, n)| n).sum();
    let growth = growth_after_warm_up(&rss);
    if !alive || !stopped.success() || server_errors > 0 || growth.is_none_or(|g| g > 5.0) || outlived {
        bail!(
            "the soak failed: alive {alive}, exit {stopped}, 5xx {server_errors}, RSS growth {growth:?}%, a slow client outlived its bound: {outlived}"
        );
    }
    Ok(())
}

/// The slow clients' part of the report: connections the server closed, by kind, and the
/// longest each kind was held; returns whether one was held past its bound (the defaults:
/// 15 s for headers, idle included, and 60 s for a body, each with 5 s of slack for the
/// clients' 2-s ticks), or, in a run long enough (`long_enough`), a kind never closed.
fn slow_report(md: &mut String, slow: &SlowClients, held: &str, long_enough: bool) -> bool {
    use std::fmt::Write as _;
    let _ = writeln!(
        md,
        "\nSlow clients ({SLOW_PER_KIND} of each kind at a time, replaced as they are closed); the server held {held} \
         connections at the end.\n\n| kind | closed by the server | longest held |\n|---|---:|---:|"
    );
    let mut outlived = false;
    for kind in Slow::ALL {
        let closed = slow.closed_after.iter().filter(|(k, _)| *k == kind).count();
        let longest = slow.longest_closed(kind);
        let bound = if kind == Slow::Body { 65.0 } else { 20.0 };
        outlived |= longest.is_some_and(|d| d.as_secs_f64() > bound) || (long_enough && closed == 0);
        let _ = writeln!(
            md,
            "| {kind:?} | {closed} | {} |",
            longest.map_or("-".into(), |d| format!("{:.1} s", d.as_secs_f64()))
        );
    }
    outlived
}

/// Sends one request of `kind`; returns its status code, or 0 for a socket error or a
/// deliberate disconnect.
fn send(port: u16, kind: Kind, random: &mut Random, corpus: &[String], second: &str) -> u16 {
    let line = |random: &mut Random| corpus[random.below(corpus.len())].clone();
    let (path, body) = match kind {
        Kind::Texts => {
            let texts: Vec<String> = (0..1 + random.below(4)).map(|_| line(random)).collect();
            ("/api/v1/embed", serde_json::json!({"texts": texts}).to_string())
        }
        Kind::Base64 => {
            ("/v1/embeddings", serde_json::json!({"input": line(random), "encoding_format": "base64"}).to_string())
        }
        Kind::TokenArrays => {
            let ids: Vec<u32> = std::iter::once(101)
                .chain((0..random.below(30)).map(|_| 2000 + random.below(20_000) as u32))
                .chain([102])
                .collect();
            ("/v1/embeddings", serde_json::json!({"input": [ids]}).to_string())
        }
        Kind::TeiEmbed => {
            ("/embed", serde_json::json!({"inputs": [line(random), line(random)], "truncate": true}).to_string())
        }
        Kind::Tokenize => ("/tokenize", serde_json::json!({"inputs": line(random)}).to_string()),
        Kind::SecondModel => {
            ("/v1/embeddings", serde_json::json!({"input": line(random), "model": second}).to_string())
        }
        Kind::CacheChurn => {
            let unique = format!("{} #{}", line(random), random.next());
            ("/api/v1/embed", serde_json::json!({"texts": [unique], "dimensions": 64}).to_string())
        }
        Kind::BadInput => match random.below(5) {
            0 => ("/v1/embeddings", serde_json::json!({"input": [[101, 999_999, 102]]}).to_string()),
            1 => ("/v1/embeddings", serde_json::json!({"input": [[]]}).to_string()),
            2 => ("/api/v1/embed", serde_json::json!({"texts": []}).to_string()),
            3 => ("/api/v1/embed", serde_json::json!({"texts": ["a"], "dimensions": 9999}).to_string()),
            _ => ("/api/v1/embed", "{\"texts\": [\"unterminated".to_string()),
        },
        Kind::HugeInput => ("/api/v1/embed", serde_json::json!({"texts": ["word ".repeat(19_000)]}).to_string()),
        Kind::OverSizeBody => ("/api/v1/embed", serde_json::json!({"texts": ["x".repeat(3 << 20)]}).to_string()),
        Kind::Disconnect => (
            "/api/v1/embed",
            serde_json::json!({"texts": (0..32).map(|_| line(random)).collect::<Vec<_>>()}).to_string(),
        ),
    };
    let exchange = || -> std::io::Result<u16> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
        // An over-size body may be refused before it is all sent; the status still comes back.
        let _ = stream.write_all(body.as_bytes());
        if kind == Kind::Disconnect {
            return Ok(0);
        }
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply)?;
        let head = String::from_utf8_lossy(&reply[..reply.len().min(16)]).into_owned();
        Ok(head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0))
    };
    exchange().unwrap_or(0)
}

/// Percent growth of resident memory after the warm-up (the first fifth of the run, at least a
/// minute): the least-squares line through the later samples, from its start to its end.
fn growth_after_warm_up(rss: &[(f64, f64)]) -> Option<f64> {
    let end = rss.last()?.0;
    let warm = (end / 5.0).max(60.0).min(end / 2.0);
    let points: Vec<&(f64, f64)> = rss.iter().filter(|(t, _)| *t >= warm).collect();
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let (mx, my) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let slope = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>()
        / points.iter().map(|p| (p.0 - mx).powi(2)).sum::<f64>();
    let (first, last) = (points[0].0, points[points.len() - 1].0);
    let start = my + slope * (first - mx);
    Some(100.0 * slope * (last - first) / start)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn report(minutes: u64, rss: &[(f64, f64)], tally: &Tally, clean: bool) -> String {
    use std::fmt::Write as _;
    let mut md = String::new();
    let _ = writeln!(md, "# Soak: {minutes} minutes, {CLIENTS} clients\n");
    let growth = growth_after_warm_up(rss);
    let peak = rss.iter().map(|r| r.1).fold(0.0, f64::max);
    let _ = writeln!(
        md,
        "Resident memory: {:.0} MiB at the first sample, {:.0} MiB at the last, peak {peak:.0} MiB; growth after \
         warm-up (least squares) {}. Server alive and stopped cleanly: {clean}.\n",
        rss.first().map_or(0.0, |r| r.1),
        rss.last().map_or(0.0, |r| r.1),
        growth.map_or("-".into(), |g| format!("{g:.1}%"))
    );
    let mut by_class: BTreeMap<&str, u64> = BTreeMap::new();
    for ((_, status), n) in &tally.statuses {
        let class = match status {
            0 => "no answer (socket error or deliberate disconnect)",
            200..=299 => "2xx",
            400..=499 => "4xx",
            500..=599 => "5xx",
            _ => "other",
        };
        *by_class.entry(class).or_default() += n;
    }
    let _ = writeln!(md, "| answers | count |\n|---|---:|");
    for (class, n) in &by_class {
        let _ = writeln!(md, "| {class} | {n} |");
    }
    let _ = writeln!(md, "\n| request kind | status | count |\n|---|---:|---:|");
    for ((kind, status), n) in &tally.statuses {
        let _ = writeln!(md, "| {kind:?} | {status} | {n} |");
    }
    let _ = writeln!(md, "\n| minutes | answered | p50 ms | p99 ms |\n|---:|---:|---:|---:|");
    // Per minute up to 10 minutes, per 10 minutes beyond.
    let step = if minutes > 10 { 10 } else { 1 };
    let mut grouped: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for (minute, latencies) in &tally.latencies {
        grouped.entry(minute / step).or_default().extend(latencies);
    }
    for (group, latencies) in &grouped {
        let mut sorted = latencies.clone();
        sorted.sort_by(f64::total_cmp);
        let _ = writeln!(
            md,
            "| {}-{} | {} | {:.1} | {:.1} |",
            group * step,
            (group + 1) * step,
            sorted.len(),
            percentile(&sorted, 0.5),
            percentile(&sorted, 0.99)
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_measured_after_the_warm_up() {
        // Flat after a first-minute climb: no growth.
        let flat: Vec<(f64, f64)> =
            (0..120).map(|i| (f64::from(i) * 5.0, if i < 10 { 100.0 + f64::from(i) * 10.0 } else { 200.0 })).collect();
        assert!(growth_after_warm_up(&flat).expect("enough samples").abs() < 0.01);
        // Climbing 10% over the measured part.
        let leak: Vec<(f64, f64)> = (0..120).map(|i| (f64::from(i) * 5.0, 200.0 + f64::from(i) * 0.2)).collect();
        let growth = growth_after_warm_up(&leak).expect("enough samples");
        assert!((growth - 9.0).abs() < 1.0, "{growth}");
        assert!(growth_after_warm_up(&[(5.0, 1.0)]).is_none());
    }

    #[test]
    fn the_mix_draws_every_kind() {
        let mut random = Random(42);
        let drawn: std::collections::BTreeSet<Kind> = (0..10_000).map(|_| random.kind()).collect();
        assert_eq!(drawn.len(), MIX.len());
    }
}
