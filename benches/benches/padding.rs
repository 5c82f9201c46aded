//! Padding waste of length-aware batching on a padded backend: the candle-transformers path
//! (`backend.packed = false`, the path GPUs run) on the CPU, a mixed corpus (three short
//! sentences to one medium passage, shuffled), every text its own concurrent request through
//! the dynamic batcher, under each `max_batch_tokens` and `min_fill_percent`. For each: the
//! share of computed tokens that were padding, the batch sizes, and sentences/s.
//!
//! `cargo bench -p aki-benches --bench padding -- [--quick] [--json PATH]`. Under `cargo test`
//! it is a smoke run.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use aki_backend_candle::{CandleBackend, CandleConfig};
use aki_batching::{BatchConfig, BatchObserver, BatchShape};
use aki_bench_report::PaddingRow;
use aki_benches::{batched, medium_corpus, short_corpus};
use aki_core::{EmbedOptions, RequestContext, paths};

/// Sums what the batcher dispatched.
#[derive(Default)]
struct Padding {
    real: AtomicUsize,
    padded: AtomicUsize,
    batches: AtomicUsize,
    items: AtomicUsize,
}

impl BatchObserver for Padding {
    fn dispatched(&self, shape: &BatchShape) {
        self.real.fetch_add(shape.real_tokens, Ordering::Relaxed);
        self.padded.fetch_add(shape.tokens, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.items.fetch_add(shape.items, Ordering::Relaxed);
    }
}

/// Three short sentences, then one medium passage, repeated: `n` texts.
fn mixed(n: usize) -> Vec<String> {
    let (short, medium) = (short_corpus(), medium_corpus());
    (0..n)
        .map(|i| if i % 4 == 3 { medium[(i / 4) % medium.len()].clone() } else { short[i % short.len()].clone() })
        .collect()
}

fn main() {
    let raw: Vec<String> = std::env::args().collect();
    let quick = raw.iter().any(|a| a == "--quick") || !raw.iter().any(|a| a == "--bench");
    let json = raw.iter().position(|a| a == "--json").and_then(|i| raw.get(i + 1)).cloned();
    let dir = paths::installed_model_dir(paths::DEFAULT_MODEL);
    let config = CandleConfig {
        device: "cpu".into(),
        packed: false,
        max_forward_batch: 128,
        ..CandleConfig::for_model(dir.to_string_lossy())
    };
    let backend =
        CandleBackend::load(&config).unwrap_or_else(|e| panic!("{e} (run `cargo xtask fetch-model`)")).into_pipeline();
    assert!(backend.info().is_padded, "the padded path");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let texts = mixed(if quick { 32 } else { 384 });
    let settings: &[(usize, usize)] = if quick {
        &[(16_384, 0), (16_384, 50)]
    } else {
        &[(8192, 0), (8192, 50), (16_384, 0), (16_384, 50), (16_384, 70), (32_768, 50)]
    };
    println!("| max_batch_tokens | min_fill_percent | padding share | batches | texts per batch | sentences/s |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut rows = Vec::new();
    for &(max_batch_tokens, min_fill_percent) in settings {
        let padding = Arc::new(Padding::default());
        let batching =
            BatchConfig { max_batch_size: 128, max_batch_tokens, min_fill_percent, ..BatchConfig::default() };
        let rate = runtime.block_on(async {
            let provider = batched(&backend, &batching, padding.clone());
            let started = Instant::now();
            let calls: Vec<_> = texts
                .iter()
                .map(|text| {
                    let (provider, text) = (Arc::clone(&provider), text.clone());
                    tokio::spawn(async move {
                        provider.embed(vec![text], EmbedOptions::default(), RequestContext::default()).await
                    })
                })
                .collect();
            for call in calls {
                call.await.expect("task").expect("embeds");
            }
            texts.len() as f64 / started.elapsed().as_secs_f64()
        });
        let (real, padded) =
            (padding.real.load(Ordering::Relaxed) as f64, padding.padded.load(Ordering::Relaxed) as f64);
        let (batches, items) = (padding.batches.load(Ordering::Relaxed), padding.items.load(Ordering::Relaxed));
        let share = 1.0 - real / padded;
        println!(
            "| {max_batch_tokens} | {min_fill_percent} | {:.1}% | {batches} | {:.1} | {rate:.1} |",
            100.0 * share,
            items as f64 / batches as f64
        );
        rows.push(PaddingRow {
            max_batch_tokens,
            min_fill_percent,
            padding_share: share,
            batches,
            texts_per_batch: items as f64 / batches as f64,
            sentences_per_s: rate,
        });
    }
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&rows).expect("serialisable");
        std::fs::write(&path, text + "\n").unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}
