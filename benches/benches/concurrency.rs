//! N concurrent clients, each sending one short sentence at a time, through the batcher and
//! straight to the backend; prints sentences/s, latency percentiles and the mean batch size as
//! a markdown table.
//!
//! `cargo bench -p aki-benches --bench concurrency` (`-- --quick` for a smoke run, which is
//! also what `cargo test` runs; `AKI_BENCH_SECONDS` sets the seconds per scenario, default 5).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aki_batching::{BatchConfig, BatchObserver, BatchShape, BatchingProvider};
use aki_benches::{quantile, real_model, short_corpus};
use aki_core::{EmbedOptions, EmbeddingProvider};

#[derive(Default)]
struct Counts {
    batches: AtomicUsize,
    items: AtomicUsize,
}

impl BatchObserver for Counts {
    fn dispatched(&self, shape: &BatchShape) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.items.fetch_add(shape.items, Ordering::Relaxed);
    }
}

struct Outcome {
    sentences_per_s: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    errors: usize,
}

async fn drive(
    provider: Arc<dyn EmbeddingProvider>,
    corpus: Arc<Vec<String>>,
    clients: usize,
    seconds: f64,
) -> Outcome {
    let next = Arc::new(AtomicUsize::new(0));
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (provider, corpus, next) = (Arc::clone(&provider), Arc::clone(&corpus), Arc::clone(&next));
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0);
                while Instant::now() < end {
                    let text = corpus[next.fetch_add(1, Ordering::Relaxed) % corpus.len()].clone();
                    let sent = Instant::now();
                    match provider.embed(vec![text], EmbedOptions::default()).await {
                        Ok(_) => latencies.push(sent.elapsed().as_secs_f64() * 1e3),
                        Err(_) => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let (mut all, mut errors) = (Vec::new(), 0);
    for task in tasks {
        let (latencies, e) = task.await.expect("client task");
        all.extend(latencies);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    Outcome {
        sentences_per_s: all.len() as f64 / elapsed,
        p50_ms: quantile(&all, 0.50),
        p95_ms: quantile(&all, 0.95),
        p99_ms: quantile(&all, 0.99),
        errors,
    }
}

fn main() {
    // `cargo test --all-targets` runs this without `--bench`: a smoke run then, as criterion does.
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick") || !args.iter().any(|a| a == "--bench");
    let seconds: f64 =
        std::env::var("AKI_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(if quick { 1.0 } else { 5.0 });
    let levels: &[usize] = if quick { &[1, 10] } else { &[1, 10, 50, 100, 200] };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let backend = tokio::task::spawn_blocking(real_model).await.expect("load");
        let corpus = Arc::new(short_corpus());
        let counts = Arc::new(Counts::default());
        let batching: Arc<dyn EmbeddingProvider> =
            Arc::new(BatchingProvider::new(Arc::clone(&backend), BatchConfig::default(), Arc::clone(&counts) as _));
        // Warm up both paths.
        drive(Arc::clone(&batching), Arc::clone(&corpus), 8, 0.5).await;
        println!("| clients | path | sentences/s | p50 ms | p95 ms | p99 ms | mean batch | errors |");
        println!("|---:|---|---:|---:|---:|---:|---:|---:|");
        for &clients in levels {
            for (path, provider) in [("batched", &batching), ("one at a time", &backend)] {
                let (b0, i0) = (counts.batches.load(Ordering::Relaxed), counts.items.load(Ordering::Relaxed));
                let o = drive(Arc::clone(provider), Arc::clone(&corpus), clients, seconds).await;
                let batches = counts.batches.load(Ordering::Relaxed) - b0;
                let mean_batch = if batches == 0 {
                    1.0
                } else {
                    (counts.items.load(Ordering::Relaxed) - i0) as f64 / batches as f64
                };
                println!(
                    "| {clients} | {path} | {:.0} | {:.1} | {:.1} | {:.1} | {mean_batch:.1} | {} |",
                    o.sentences_per_s, o.p50_ms, o.p95_ms, o.p99_ms, o.errors
                );
            }
        }
    });
}
