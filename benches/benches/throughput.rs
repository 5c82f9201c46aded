//! Library throughput on the real model: both corpora embedded from text (tokenization, forward
//! pass, pooling, normalisation) in batches of 1, 8, 32 and 128, repeated for a median and a
//! spread; the same measurement `scripts/peer_sentence_transformers.py` makes of the peer.
//!
//! `cargo bench -p aki-benches --bench throughput -- [--quick] [--repeat N] [--threads N]
//! [--engine packed|candle] [--corpus short|medium] [--batch N] [--json PATH]`. Under `cargo test` it is a smoke run.

use std::time::Instant;

use aki_backend_candle::{CandleBackend, CandleConfig};
use aki_benches::{medium_corpus, quantile, short_corpus};
use aki_core::{EmbedOptions, EmbeddingProvider, paths};

struct Args {
    quick: bool,
    repeat: usize,
    threads: Option<usize>,
    packed: bool,
    json: Option<String>,
    corpus: Option<String>,
    batch: Option<usize>,
}

fn args() -> Args {
    let raw: Vec<String> = std::env::args().collect();
    let value = |flag: &str| raw.iter().position(|a| a == flag).and_then(|i| raw.get(i + 1)).cloned();
    // `cargo test --all-targets` runs bench targets without `--bench`: a smoke run then.
    let quick = raw.iter().any(|a| a == "--quick") || !raw.iter().any(|a| a == "--bench");
    Args {
        quick,
        repeat: value("--repeat").and_then(|v| v.parse().ok()).unwrap_or(if quick { 1 } else { 5 }),
        threads: value("--threads").and_then(|v| v.parse().ok()),
        packed: value("--engine").is_none_or(|e| e != "candle"),
        json: value("--json"),
        corpus: value("--corpus"),
        batch: value("--batch").and_then(|v| v.parse().ok()),
    }
}

fn main() {
    let args = args();
    let dir = paths::installed_model_dir(paths::DEFAULT_MODEL);
    let config = CandleConfig {
        device: "cpu".into(),
        packed: args.packed,
        threads: args.threads,
        max_forward_batch: 128,
        ..CandleConfig::for_model(dir.to_string_lossy())
    };
    let backend = CandleBackend::load(&config).unwrap_or_else(|e| panic!("{e} (run `cargo xtask fetch-model`)"));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let engine = if backend.info().is_padded { "aki (candle-transformers)" } else { "aki (packed)" };
    let batches: &[usize] = if args.quick { &[1, 8] } else { &[1, 8, 32, 128] };
    let mut rows = Vec::new();
    println!("| corpus | batch | sentences/s (median) | min | max | one call p50 ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (corpus, mut texts) in [("short", short_corpus()), ("medium", medium_corpus())] {
        if args.corpus.as_deref().is_some_and(|c| c != corpus) {
            continue;
        }
        if args.quick {
            texts.truncate(16);
        }
        for &batch in batches.iter().filter(|&&b| args.batch.is_none_or(|only| only == b)) {
            let run = || -> (f64, Vec<f64>) {
                let started = Instant::now();
                let mut calls = Vec::new();
                for chunk in texts.chunks(batch) {
                    let sent = Instant::now();
                    runtime.block_on(backend.embed(chunk.to_vec(), EmbedOptions::default())).expect("embeds");
                    calls.push(sent.elapsed().as_secs_f64() * 1e3);
                }
                (texts.len() as f64 / started.elapsed().as_secs_f64(), calls)
            };
            run(); // warm-up
            let (mut rates, mut calls) = (Vec::new(), Vec::new());
            for _ in 0..args.repeat {
                let (rate, c) = run();
                rates.push(rate);
                calls.extend(c);
            }
            rates.sort_by(f64::total_cmp);
            calls.sort_by(f64::total_cmp);
            let median = quantile(&rates, 0.5);
            let call_p50 = quantile(&calls, 0.5);
            println!(
                "| {corpus} | {batch} | {median:.1} | {:.1} | {:.1} | {call_p50:.2} |",
                rates[0],
                rates[rates.len() - 1]
            );
            rows.push(format!(
                r#"{{"engine":"{engine}","corpus":"{corpus}","batch":{batch},"sentences_per_s":{rates:?},"call_p50_ms":{call_p50:.3}}}"#
            ));
        }
    }
    if let Some(path) = args.json {
        std::fs::write(&path, format!("[\n{}\n]\n", rows.join(",\n"))).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}
