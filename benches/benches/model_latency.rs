//! Criterion: the real model's latency for one short sentence and for batches of 2 to 32,
//! pre-tokenized (model only) and from text (tokenization included).
//!
//! `cargo bench -p aki-benches --bench model_latency`

use aki_benches::{real_model, short_corpus};
use aki_core::{EmbedOptions, EncodeOptions, RequestContext};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn latency(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let model = real_model();
    let corpus = short_corpus();
    let mut group = c.benchmark_group("model_latency_short");
    for size in [1usize, 2, 4, 8, 16, 32] {
        let texts: Vec<String> = corpus[..size].to_vec();
        let encoded = runtime.block_on(model.encode(texts.clone(), EncodeOptions::default())).expect("encode");
        group.throughput(Throughput::Elements(size as u64));
        group.bench_with_input(BenchmarkId::new("model_only", size), &encoded, |b, encoded| {
            b.to_async(&runtime).iter(|| model.inference().embed(encoded.clone(), RequestContext::default()));
        });
        group.bench_with_input(BenchmarkId::new("from_text", size), &texts, |b, texts| {
            b.to_async(&runtime)
                .iter(|| model.embed(texts.clone(), EmbedOptions::default(), RequestContext::default()));
        });
    }
    group.finish();
}

criterion_group!(benches, latency);
criterion_main!(benches);
