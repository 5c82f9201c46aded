//! `CachedProvider`: same vectors as uncached, only missing inputs computed, one entry per model
//! input whatever the request's options, text and token ids sharing entries, failures not cached.

use std::sync::{Arc, Mutex};

use aki_cache::{CacheObserver, CachedProvider, NoCacheObserver, ResultCache, ResultCacheConfig};
use aki_core::{EmbedError, EmbedOptions, EmbeddingProvider, Encoding, ModelPipeline, Pooled, RequestContext};
use mockall::predicate::{always, eq};

use crate::fakes::{MockProvider, MockTokenizer, info};

/// An encoding of `ids` (type ids zero).
fn enc(ids: &[u32]) -> Encoding {
    Encoding { ids: ids.to_vec(), type_ids: vec![0; ids.len()] }
}

/// A deterministic pooled vector for an encoding, different per encoding.
fn vector_for(e: &Encoding) -> Vec<f32> {
    let seed = e.ids.iter().sum::<u32>() as f32;
    (0..4).map(|i| seed + i as f32).collect()
}

fn answer(batch: &[Encoding]) -> Pooled {
    Pooled { vectors: batch.iter().map(vector_for).collect(), timing: Default::default() }
}

/// Counts what the cache reports.
#[derive(Default)]
struct Counted(Mutex<(usize, usize)>);
impl CacheObserver for Counted {
    fn looked_up(&self, hits: usize, misses: usize) {
        let mut counts = self.0.lock().expect("lock");
        counts.0 += hits;
        counts.1 += misses;
    }
}
impl Counted {
    fn get(&self) -> (usize, usize) {
        *self.0.lock().expect("lock")
    }
}

fn cached(mock: MockProvider) -> (CachedProvider, ResultCache, Arc<Counted>) {
    let cache = ResultCache::new(&ResultCacheConfig { max_bytes: 1 << 20 }).expect("cache on");
    let counted = Arc::new(Counted::default());
    (CachedProvider::new(Arc::new(mock), cache.clone(), "m", counted.clone()), cache, counted)
}

/// The model `m`'s pipeline with the cache on its inference side.
fn pipeline(provider: CachedProvider, tokenizer: MockTokenizer) -> ModelPipeline {
    ModelPipeline::new(info("m"), Arc::new(tokenizer), Arc::new(provider))
}

fn base_mock() -> MockProvider {
    MockProvider::new()
}

#[tokio::test]
async fn a_mixed_request_computes_only_the_missing_inputs_and_keeps_order() {
    let mut mock = base_mock();
    let (a, b, c) = (enc(&[1, 5, 2]), enc(&[1, 6, 2]), enc(&[1, 7, 2]));
    mock.expect_embed()
        .with(eq(vec![a.clone(), b.clone()]), always())
        .times(1)
        .returning(|batch, _| Ok(answer(&batch)));
    // `c` is new; `a` repeats inside the request and is computed once.
    mock.expect_embed().with(eq(vec![c.clone()]), always()).times(1).returning(|batch, _| Ok(answer(&batch)));
    let (provider, cache, counted) = cached(mock);

    let ctx = RequestContext::default();
    let first = provider.embed(vec![a.clone(), b.clone(), a.clone()], ctx.clone()).await.expect("first");
    assert_eq!(first, answer(&[a.clone(), b.clone(), a.clone()]), "identical to the uncached answer");
    let mixed = provider.embed(vec![b.clone(), c.clone(), a.clone()], ctx.clone()).await.expect("mixed");
    assert_eq!(mixed, answer(&[b, c, a]), "every vector in order");
    // Counted per position: the first request missed three times (its repeated input too,
    // though computed once); the second hit two and missed one.
    assert_eq!(counted.get(), (2, 4));
    let stats = cache.stats().await;
    assert_eq!(stats.entries, 3);
    assert!(stats.bytes > 0);
}

#[tokio::test]
async fn one_entry_serves_every_normalisation_and_dimension() {
    let mut mock = base_mock();
    mock.expect_embed().times(1).returning(|batch, _| Ok(answer(&batch)));
    let (provider, cache, counted) = cached(mock);
    let provider = pipeline(provider, MockTokenizer::new());
    let plain = EmbedOptions::default();
    let outcomes =
        [plain, EmbedOptions { dimensions: Some(2), ..plain }, EmbedOptions { normalize: Some(false), ..plain }];
    let mut lengths = Vec::new();
    for options in outcomes {
        let out = provider.embed_tokens(vec![vec![1, 9, 2]], options, RequestContext::default()).await.expect("embeds");
        lengths.push(out.vectors[0].len());
        if options.normalize == Some(false) {
            assert_eq!(out.vectors[0], vector_for(&enc(&[1, 9, 2])), "the raw pooled vector");
        }
    }
    assert_eq!(lengths, [4, 2, 4], "options applied after the cache");
    assert_eq!(counted.get(), (2, 1));
    assert_eq!(cache.stats().await.entries, 1);
}

#[tokio::test]
async fn text_and_token_id_inputs_that_encode_alike_share_an_entry() {
    let mut mock = base_mock();
    let mut tokenizer = MockTokenizer::new();
    tokenizer.expect_encode().returning(|texts, _| Ok(texts.iter().map(|t| enc(&[1, t.len() as u32, 2])).collect()));
    mock.expect_embed().times(1).returning(|batch, _| Ok(answer(&batch)));
    let (provider, _, counted) = cached(mock);
    let provider = pipeline(provider, tokenizer);
    let ctx = RequestContext::default();
    let by_text = provider.embed(vec!["abc".into()], EmbedOptions::default(), ctx.clone()).await.expect("text");
    let by_ids = provider.embed_tokens(vec![vec![1, 3, 2]], EmbedOptions::default(), ctx.clone()).await.expect("ids");
    assert_eq!(by_text.vectors, by_ids.vectors);
    assert_eq!(counted.get(), (1, 1));
}

#[tokio::test]
async fn failures_are_not_cached() {
    let mut mock = base_mock();
    let mut seq = mockall::Sequence::new();
    mock.expect_embed().times(1).in_sequence(&mut seq).returning(|_, _| Err(EmbedError::Backend("boom".into())));
    mock.expect_embed().times(1).in_sequence(&mut seq).returning(|batch, _| Ok(answer(&batch)));
    let (provider, cache, _) = cached(mock);
    let ctx = RequestContext::default();
    let err = provider.embed(vec![enc(&[1])], ctx.clone()).await.expect_err("fails");
    assert_eq!(err, EmbedError::Backend("boom".into()));
    provider.embed(vec![enc(&[1])], ctx.clone()).await.expect("computed again");
    assert_eq!(cache.stats().await.entries, 1);
}

#[tokio::test]
async fn the_cache_is_bounded_in_bytes_and_off_at_zero() {
    assert!(ResultCache::new(&ResultCacheConfig { max_bytes: 0 }).is_none(), "0 bytes turns it off");
    let mut mock = base_mock();
    mock.expect_embed().returning(|batch, _| Ok(answer(&batch)));
    let cache = ResultCache::new(&ResultCacheConfig { max_bytes: 4_000 }).expect("on");
    let provider = CachedProvider::new(Arc::new(mock), cache.clone(), "m", Arc::new(NoCacheObserver));
    let many: Vec<Encoding> = (0..100).map(|i| enc(&[1, i, 2])).collect();
    provider.embed(many, RequestContext::default()).await.expect("embeds");
    let stats = cache.stats().await;
    assert!(stats.bytes <= 4_000, "{} bytes held", stats.bytes);
    assert!(stats.entries < 100 && stats.entries > 0, "{} entries", stats.entries);
}
