//! Criterion: the real model's latency for one short sentence and for batches of 2 to 32,
//! pre-tokenized (model only) and from text (tokenization included).
//!
//! Every call takes sentences of one length, the short corpus's median in tokens, so a call of
//! N sentences does N times one sentence's work: the corpus's first sentences differ (16 and 24
//! tokens for the first two, 85 for the first four), which would make small calls look dearer
//! per sentence than they are. The instruction set and precision follow `AKI_BACKEND__CPU_ISA` and
//! `AKI_BACKEND__DTYPE`.
//!
//! `cargo bench -p aki-benches --bench model_latency`

use aki_benches::{real_model, short_corpus};
use aki_core::{EmbedOptions, EncodeOptions, RequestContext};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const SIZES: [usize; 6] = [1, 2, 4, 8, 16, 32];

fn latency(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let model = real_model();
    let corpus = short_corpus();
    let encodings = runtime.block_on(model.encode(corpus.clone(), EncodeOptions::default())).expect("encode");
    let mut lengths: Vec<usize> = encodings.iter().map(|e| e.len()).collect();
    lengths.sort_unstable();
    let median = lengths[lengths.len() / 2];
    let (typical, typical_encodings): (Vec<String>, Vec<_>) =
        corpus.into_iter().zip(encodings).filter(|(_, e)| e.len() == median).unzip();
    assert!(typical.len() >= SIZES[SIZES.len() - 1], "too few sentences of {median} tokens");
    println!("sentences of {median} tokens (the short corpus's median)");
    let mut group = c.benchmark_group("model_latency_short");
    for size in SIZES {
        let texts: Vec<String> = typical[..size].to_vec();
        let encoded = typical_encodings[..size].to_vec();
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
