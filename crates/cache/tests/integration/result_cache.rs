//! `CachedProvider`: same vectors as uncached, only missing texts computed, options that change
//! a vector are part of the key, failures are not cached.

use std::sync::Arc;

use aki_cache::{CachedProvider, ResultCache, ResultCacheConfig};
use aki_core::{EmbedError, EmbedOptions, EmbeddingProvider, Embeddings};
use mockall::predicate::eq;

use crate::fakes::{MockProvider, info};

/// A deterministic vector for `text`, different per text and per option set.
fn vector_for(text: &str, options: &EmbedOptions) -> Vec<f32> {
    let seed = text.bytes().map(f32::from).sum::<f32>() + options.dimensions.unwrap_or(0) as f32;
    let scale = if options.normalize == Some(false) { 10.0 } else { 1.0 };
    (0..options.dimensions.unwrap_or(4)).map(|i| scale * (seed + i as f32)).collect()
}

fn answer(texts: &[String], options: &EmbedOptions) -> Embeddings {
    Embeddings {
        vectors: texts.iter().map(|t| vector_for(t, options)).collect(),
        token_counts: texts.iter().map(|t| t.len() + 2).collect(),
        timing: Default::default(),
    }
}

fn texts(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_string()).collect()
}

fn cached(mock: MockProvider) -> (CachedProvider, ResultCache) {
    let cache = ResultCache::new(&ResultCacheConfig { max_bytes: 1 << 20 }).expect("cache on");
    (CachedProvider::new(Arc::new(mock), cache.clone()), cache)
}

fn base_mock() -> MockProvider {
    let mut mock = MockProvider::new();
    mock.expect_info().return_const(info("m"));
    mock
}

#[tokio::test]
async fn a_mixed_request_computes_only_the_missing_texts_and_keeps_order() {
    let mut mock = base_mock();
    let options = EmbedOptions::default();
    mock.expect_embed().with(eq(texts(&["a", "b"])), eq(options)).times(1).returning(|t, o| Ok(answer(&t, &o)));
    // "c" is new; "a" repeats inside the request and is computed once.
    mock.expect_embed().with(eq(texts(&["c"])), eq(options)).times(1).returning(|t, o| Ok(answer(&t, &o)));
    let (provider, cache) = cached(mock);

    let first = provider.embed(texts(&["a", "b", "a"]), options).await.expect("first");
    assert_eq!(first, answer(&texts(&["a", "b", "a"]), &options), "identical to the uncached answer");
    let mixed = provider.embed(texts(&["b", "c", "a"]), options).await.expect("mixed");
    assert_eq!(mixed, answer(&texts(&["b", "c", "a"]), &options), "every vector in order");
    // Counted per position: the first request missed three times (its repeated "a" too,
    // though computed once); the second hit "b" and "a" and missed "c".
    let stats = cache.stats().await;
    assert_eq!((stats.hits, stats.misses, stats.entries), (2, 4, 3));
    assert!(stats.bytes > 0);
}

#[tokio::test]
async fn normalize_dimensions_and_truncation_are_part_of_the_key() {
    let mut mock = base_mock();
    mock.expect_embed().times(4).returning(|t, o| Ok(answer(&t, &o)));
    let (provider, cache) = cached(mock);
    let plain = EmbedOptions::default();
    let short = EmbedOptions { dimensions: Some(2), ..plain };
    let raw = EmbedOptions { normalize: Some(false), ..plain };
    let mut strict = plain;
    strict.encode.truncate = false;
    for options in [plain, short, raw, strict, plain, short] {
        let out = provider.embed(texts(&["x"]), options).await.expect("embeds");
        assert_eq!(out.vectors[0], vector_for("x", &options));
    }
    let stats = cache.stats().await;
    assert_eq!((stats.misses, stats.hits, stats.entries), (4, 2, 4));
    // `normalize: Some(true)` equals the model's default and shares its entry.
    let explicit = EmbedOptions { normalize: Some(true), ..plain };
    provider.embed(texts(&["x"]), explicit).await.expect("hit");
    assert_eq!(cache.stats().await.hits, 3);
}

#[tokio::test]
async fn failures_are_not_cached() {
    let mut mock = base_mock();
    let mut seq = mockall::Sequence::new();
    mock.expect_embed().times(1).in_sequence(&mut seq).returning(|_, _| Err(EmbedError::Backend("boom".into())));
    mock.expect_embed().times(1).in_sequence(&mut seq).returning(|t, o| Ok(answer(&t, &o)));
    let (provider, cache) = cached(mock);
    let err = provider.embed(texts(&["x"]), EmbedOptions::default()).await.expect_err("fails");
    assert_eq!(err, EmbedError::Backend("boom".into()));
    provider.embed(texts(&["x"]), EmbedOptions::default()).await.expect("computed again");
    assert_eq!(cache.stats().await.entries, 1);
}

#[tokio::test]
async fn the_cache_is_bounded_in_bytes_and_off_at_zero() {
    assert!(ResultCache::new(&ResultCacheConfig { max_bytes: 0 }).is_none(), "0 bytes turns it off");
    let mut mock = base_mock();
    mock.expect_embed().returning(|t, o| Ok(answer(&t, &o)));
    let cache = ResultCache::new(&ResultCacheConfig { max_bytes: 2_000 }).expect("on");
    let provider = CachedProvider::new(Arc::new(mock), cache.clone());
    let many: Vec<String> = (0..100).map(|i| format!("text number {i}")).collect();
    provider.embed(many, EmbedOptions::default()).await.expect("embeds");
    let stats = cache.stats().await;
    assert!(stats.bytes <= 2_000, "{} bytes held", stats.bytes);
    assert!(stats.entries < 100);
}

#[tokio::test]
async fn bad_dimensions_are_rejected_before_any_work() {
    let mock = base_mock();
    let (provider, _) = cached(mock);
    let options = EmbedOptions { dimensions: Some(5), ..EmbedOptions::default() };
    let err = provider.embed(texts(&["x"]), options).await.expect_err("too many");
    assert_eq!(err.kind(), aki_core::ErrorKind::Validation);
    assert_eq!(provider.info().dimension, 4);
}
