//! The mixed scenario of `cargo xtask load`: bulk clients indexing (512 medium passages per
//! request) alongside query clients (one short text per request), as a vector database does.
//! Three phases on one server: queries alone, bulk alone, both; reports query latency and bulk
//! passages/s in each, every failed request (a 429 included) and the tokens the server computed
//! and then discarded (`aki_wasted_tokens_total`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use aki_bench_report::MixedOutcome;
use anyhow::{Context, Result, bail};

use crate::server::{Server, get, post_json};

/// The scenario's size.
pub struct Mix {
    /// Clients posting one short text per request, back to back.
    pub query_clients: usize,
    /// Clients posting `passages` medium passages per request, back to back.
    pub bulk_clients: usize,
    /// Passages per bulk request.
    pub passages: usize,
    /// How long each phase sends new requests; a bulk request under way then is waited for.
    pub seconds: u64,
}

/// The scenario: 4 query clients, 2 bulk clients of 512 passages, 30 s.
pub const FULL: Mix = Mix { query_clients: 4, bulk_clients: 2, passages: 512, seconds: 30 };
/// A smoke run on the dev build.
pub const QUICK: Mix = Mix { query_clients: 2, bulk_clients: 1, passages: 16, seconds: 3 };

/// What the clients of one phase saw.
#[derive(Default)]
struct Tally {
    query_ms: Vec<f64>,
    query_failed: u64,
    bulk_passages: u64,
    bulk_requests: u64,
    bulk_failed: u64,
    failures: Vec<String>,
}

/// Runs the three phases against `server` and prints their table.
pub fn run(server: &mut Server, root: &std::path::Path, mix: &Mix) -> Result<MixedOutcome> {
    let data = root.join("benches/data");
    let short = lines(&data.join("short_1024.txt"))?;
    let medium = lines(&data.join("medium_256.txt"))?;
    // Requests a previous scenario's clients abandoned may still be finishing.
    thread::sleep(Duration::from_secs(2));
    let wasted_before = wasted_tokens(server)?;
    let counter = Arc::new(AtomicU64::new(0));
    let (queries_alone, _) = phase(server, mix, &short, &medium, &counter, true, false)?;
    let (bulk_alone, bulk_alone_s) = phase(server, mix, &short, &medium, &counter, false, true)?;
    let (both, both_s) = phase(server, mix, &short, &medium, &counter, true, true)?;
    let wasted = wasted_tokens(server)?.zip(wasted_before).map(|(after, before)| after - before);
    let tallies = [&queries_alone, &bulk_alone, &both];
    let outcome = MixedOutcome {
        query_clients: mix.query_clients,
        bulk_clients: mix.bulk_clients,
        passages_per_request: mix.passages,
        seconds: mix.seconds,
        query_p50_alone_ms: percentile(&queries_alone.query_ms, 50.0),
        query_p99_alone_ms: percentile(&queries_alone.query_ms, 99.0),
        query_p50_with_bulk_ms: percentile(&both.query_ms, 50.0),
        query_p99_with_bulk_ms: percentile(&both.query_ms, 99.0),
        query_max_with_bulk_ms: both.query_ms.iter().copied().fold(0.0, f64::max),
        queries_alone: queries_alone.query_ms.len() as u64,
        queries_with_bulk: both.query_ms.len() as u64,
        bulk_passages_per_s_alone: bulk_alone.bulk_passages as f64 / bulk_alone_s,
        bulk_passages_per_s_with_queries: both.bulk_passages as f64 / both_s,
        bulk_requests: bulk_alone.bulk_requests + both.bulk_requests,
        failed_queries: tallies.iter().map(|t| t.query_failed).sum(),
        failed_bulk: tallies.iter().map(|t| t.bulk_failed).sum(),
        wasted_tokens: wasted,
    };
    print_table(&outcome);
    for failure in tallies.iter().flat_map(|t| &t.failures).take(5) {
        println!("  failed: {failure}");
    }
    if let Some(status) = server.exited()? {
        bail!("aki-rest died during the mixed scenario ({status})");
    }
    Ok(outcome)
}

fn print_table(o: &MixedOutcome) {
    println!(
        "mixed ({} query clients, {} bulk clients x {} passages, {} s per phase)",
        o.query_clients, o.bulk_clients, o.passages_per_request, o.seconds
    );
    println!("| | alone | with the other kind |\n|---|---:|---:|");
    println!("| query p50 (ms) | {:.1} | {:.1} |", o.query_p50_alone_ms, o.query_p50_with_bulk_ms);
    println!("| query p99 (ms) | {:.1} | {:.1} |", o.query_p99_alone_ms, o.query_p99_with_bulk_ms);
    println!("| query max (ms) | | {:.1} |", o.query_max_with_bulk_ms);
    println!("| queries answered | {} | {} |", o.queries_alone, o.queries_with_bulk);
    println!("| bulk passages/s | {:.1} | {:.1} |", o.bulk_passages_per_s_alone, o.bulk_passages_per_s_with_queries);
    let wasted = o.wasted_tokens.map_or_else(|| "not reported".to_string(), |w| w.to_string());
    println!(
        "failed queries {}, failed bulk requests {} (of {}), wasted tokens {wasted}",
        o.failed_queries, o.failed_bulk, o.bulk_requests
    );
}

/// One phase: the chosen kinds of client for `mix.seconds`, then until every bulk request
/// under way is answered. Returns the tally and the phase's length in seconds (bulk rate is
/// passages answered over it).
fn phase(
    server: &Server,
    mix: &Mix,
    short: &Arc<Vec<String>>,
    medium: &Arc<Vec<String>>,
    counter: &Arc<AtomicU64>,
    queries: bool,
    bulk: bool,
) -> Result<(Tally, f64)> {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let sending = Arc::new(AtomicBool::new(true));
    let bulk_running = Arc::new(AtomicU64::new(0));
    let port = server.port;
    let started = Instant::now();
    let mut clients = Vec::new();
    for client in 0..if bulk { mix.bulk_clients } else { 0 } {
        let (tally, sending, medium, counter, running) = (
            Arc::clone(&tally),
            Arc::clone(&sending),
            Arc::clone(medium),
            Arc::clone(counter),
            Arc::clone(&bulk_running),
        );
        let passages = mix.passages;
        running.fetch_add(1, Ordering::SeqCst);
        clients.push(thread::spawn(move || {
            while sending.load(Ordering::SeqCst) {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                // Unique passages (as an indexing job sends), so the result cache does not answer.
                let inputs: Vec<String> =
                    (0..passages).map(|i| format!("{} [doc {n}-{client}-{i}]", medium[i % medium.len()])).collect();
                let body = serde_json::json!({ "texts": inputs }).to_string();
                let answer = post_json(port, "/api/v1/embed", &body);
                let mut tally = tally.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                tally.bulk_requests += 1;
                match answer {
                    Ok((200, _)) => tally.bulk_passages += passages as u64,
                    other => {
                        tally.bulk_failed += 1;
                        tally.failures.push(format!("bulk: {}", describe(&other)));
                    }
                }
            }
            running.fetch_sub(1, Ordering::SeqCst);
        }));
    }
    for client in 0..if queries { mix.query_clients } else { 0 } {
        let (tally, sending, short, counter, running) = (
            Arc::clone(&tally),
            Arc::clone(&sending),
            Arc::clone(short),
            Arc::clone(counter),
            Arc::clone(&bulk_running),
        );
        let measured_while_bulk = bulk;
        clients.push(thread::spawn(move || {
            let mut i = client * 97;
            // With bulk clients, queries go on until the last bulk request is answered.
            while sending.load(Ordering::SeqCst) || (measured_while_bulk && running.load(Ordering::SeqCst) > 0) {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let text = format!("{} #{n}", short[i % short.len()]);
                i += 1;
                let body = serde_json::json!({ "texts": [text] }).to_string();
                let sent = Instant::now();
                let answer = post_json(port, "/api/v1/embed", &body);
                let ms = sent.elapsed().as_secs_f64() * 1e3;
                let mut tally = tally.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                match answer {
                    Ok((200, _)) => tally.query_ms.push(ms),
                    other => {
                        tally.query_failed += 1;
                        tally.failures.push(format!("query: {}", describe(&other)));
                    }
                }
            }
        }));
    }
    thread::sleep(Duration::from_secs(mix.seconds));
    sending.store(false, Ordering::SeqCst);
    for client in clients {
        client.join().map_err(|_| anyhow::anyhow!("a load client panicked"))?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let tally = Arc::try_unwrap(tally).map_err(|_| anyhow::anyhow!("a client still holds the tally"))?;
    Ok((tally.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner), seconds))
}

fn describe(answer: &std::io::Result<(u16, String)>) -> String {
    match answer {
        Ok((status, body)) => format!("{status} {}", body.chars().take(160).collect::<String>()),
        Err(error) => format!("socket error: {error}"),
    }
}

fn lines(path: &std::path::Path) -> Result<Arc<Vec<String>>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Arc::new(text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()))
}

/// `aki_wasted_tokens_total` from `/metrics`, summed over its labels; `None` when the server
/// does not report it.
fn wasted_tokens(server: &Server) -> Result<Option<u64>> {
    let metrics = get(server.port, "/metrics").context("reading /metrics")?;
    let values: Vec<u64> = metrics
        .lines()
        .filter(|l| l.starts_with("aki_wasted_tokens_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .collect();
    Ok((!values.is_empty()).then(|| values.iter().sum()))
}

/// The `p`th percentile of `values` (nearest rank); 0 for none.
fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!((percentile(&values, 50.0), percentile(&values, 99.0)), (50.0, 99.0));
        assert_eq!(percentile(&[], 99.0), 0.0);
    }
}
