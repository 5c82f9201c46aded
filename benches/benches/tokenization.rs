//! Criterion: tokenizing the short corpus (1024 sentences) one text at a time versus as one
//! batch, which the `tokenizers` crate spreads over rayon's threads.
//!
//! `cargo bench -p aki-benches --bench tokenization`

use aki_benches::short_corpus;
use aki_core::paths;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokenizers::Tokenizer;

fn tokenization(c: &mut Criterion) {
    let path = paths::installed_model_dir(paths::DEFAULT_MODEL).join("tokenizer.json");
    let mut tokenizer = match Tokenizer::from_file(&path) {
        Ok(t) => t,
        Err(e) => panic!("{}: {e} (run `cargo xtask fetch-model`)", path.display()),
    };
    // As the backend does: no padding, truncation at the model's 256 tokens.
    tokenizer.with_padding(None);
    let truncation = tokenizers::TruncationParams { max_length: 256, ..Default::default() };
    if let Err(e) = tokenizer.with_truncation(Some(truncation)) {
        panic!("truncation: {e}");
    }
    let corpus = short_corpus();
    let mut group = c.benchmark_group("tokenization_short_1024");
    group.throughput(Throughput::Elements(corpus.len() as u64));
    group.bench_function("sequential", |b| {
        b.iter(|| corpus.iter().map(|t| tokenizer.encode(t.as_str(), true).map(|e| e.len())).collect::<Vec<_>>())
    });
    group.bench_function("parallel_batch", |b| b.iter(|| tokenizer.encode_batch(corpus.clone(), true)));
    group.finish();
}

criterion_group!(benches, tokenization);
criterion_main!(benches);
