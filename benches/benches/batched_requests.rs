//! Criterion: throughput of 10, 50, 100 and 200 concurrent single-text requests through the
//! batching provider on the real model (one iteration = N requests sent at once, each one
//! short sentence, all answered).
//!
//! `cargo bench -p aki-benches --bench batched_requests`

use std::sync::Arc;
use std::time::Duration;

use aki_batching::{BatchConfig, NoObserver};
use aki_benches::{batched, real_model, short_corpus};
use aki_core::{EmbedOptions, RequestContext};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn concurrent(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let provider = runtime.block_on(async { batched(&real_model(), &BatchConfig::default(), Arc::new(NoObserver)) });
    let corpus = Arc::new(short_corpus());
    let mut group = c.benchmark_group("batched_requests");
    group.sample_size(10).measurement_time(Duration::from_secs(8));
    for clients in [10usize, 50, 100, 200] {
        group.throughput(Throughput::Elements(clients as u64));
        group.bench_with_input(BenchmarkId::new("concurrent_single_text", clients), &clients, |b, &n| {
            let mut round = 0usize;
            b.to_async(&runtime).iter(|| {
                round += 1;
                let (provider, corpus, first) = (Arc::clone(&provider), Arc::clone(&corpus), round * n);
                async move {
                    let calls: Vec<_> = (0..n)
                        .map(|i| {
                            let (provider, text) = (Arc::clone(&provider), corpus[(first + i) % corpus.len()].clone());
                            tokio::spawn(async move {
                                provider.embed(vec![text], EmbedOptions::default(), RequestContext::default()).await
                            })
                        })
                        .collect();
                    for call in calls {
                        call.await.expect("task").expect("embeds");
                    }
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, concurrent);
criterion_main!(benches);
