//! `CachedProvider`: remembers finished vectors so repeated texts skip inference.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aki_core::{
    EmbedOptions, EmbeddingProvider, Embeddings, EncodeOptions, Encoding, ModelInfo, Result, Timing, Token,
    TruncationDirection, vector,
};
use async_trait::async_trait;
use moka::future::Cache;

use crate::config::ResultCacheConfig;

/// Everything that changes a finished vector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    model: Arc<str>,
    normalize: bool,
    truncate: bool,
    direction: TruncationDirection,
    dimensions: Option<usize>,
    text: String,
}

#[derive(Debug)]
struct Cached {
    vector: Vec<f32>,
    tokens: usize,
}

/// Bytes an entry holds (text, vector, bookkeeping), as moka's `u32` weight.
fn weight(key: &Key, value: &Arc<Cached>) -> u32 {
    let bytes = key.text.len() + key.model.len() + value.vector.len() * 4 + 96;
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// Hit and miss counts of a [`ResultCache`], per text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResultCacheStats {
    /// Texts answered from the cache.
    pub hits: u64,
    /// Texts that had to be computed.
    pub misses: u64,
    /// Entries held now.
    pub entries: u64,
    /// Their weight in bytes.
    pub bytes: u64,
}

/// A byte-bounded cache of finished vectors, shareable by the providers of several models.
#[derive(Clone)]
pub struct ResultCache {
    cache: Cache<Key, Arc<Cached>>,
    hits: Arc<AtomicU64>,
    misses: Arc<AtomicU64>,
}

impl ResultCache {
    /// A cache holding up to `config.max_bytes`; `None` when the cache is off (0 bytes).
    pub fn new(config: &ResultCacheConfig) -> Option<Self> {
        (config.max_bytes > 0).then(|| Self {
            cache: Cache::builder().max_capacity(config.max_bytes).weigher(weight).build(),
            hits: Arc::default(),
            misses: Arc::default(),
        })
    }

    /// Current counters (entries and bytes after pending maintenance).
    pub async fn stats(&self) -> ResultCacheStats {
        self.cache.run_pending_tasks().await;
        ResultCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.cache.entry_count(),
            bytes: self.cache.weighted_size(),
        }
    }
}

/// An `EmbeddingProvider` that answers repeated texts from a [`ResultCache`] and sends only
/// the missing ones to the inner provider. Only successes are cached.
pub struct CachedProvider {
    inner: Arc<dyn EmbeddingProvider>,
    cache: ResultCache,
    model: Arc<str>,
}

impl CachedProvider {
    /// Wraps `inner` with `cache`.
    pub fn new(inner: Arc<dyn EmbeddingProvider>, cache: ResultCache) -> Self {
        let model = Arc::from(inner.info().model_id.as_str());
        Self { inner, cache, model }
    }

    fn key(&self, text: &str, options: &EmbedOptions) -> Key {
        Key {
            model: Arc::clone(&self.model),
            normalize: options.normalize.unwrap_or(self.inner.info().normalize_default),
            truncate: options.encode.truncate,
            direction: options.encode.direction,
            dimensions: options.dimensions,
            text: text.to_string(),
        }
    }
}

#[async_trait]
impl EmbeddingProvider for CachedProvider {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    async fn health(&self) -> Result<()> {
        self.inner.health().await
    }

    async fn encode(&self, texts: Vec<String>, options: EncodeOptions) -> Result<Vec<Encoding>> {
        self.inner.encode(texts, options).await
    }

    async fn tokenize(&self, texts: Vec<String>, add_special_tokens: bool) -> Result<Vec<Vec<Token>>> {
        self.inner.tokenize(texts, add_special_tokens).await
    }

    async fn embed_encoded(&self, batch: Vec<Encoding>) -> Result<Vec<Vec<f32>>> {
        self.inner.embed_encoded(batch).await
    }

    async fn embed(&self, texts: Vec<String>, options: EmbedOptions) -> Result<Embeddings> {
        vector::check_dimensions(&options, self.info())?;
        let mut found: Vec<Option<Arc<Cached>>> = Vec::with_capacity(texts.len());
        // Texts to compute, each once, and which position wants which of them.
        let mut missing: Vec<&str> = Vec::new();
        let mut slot_of: HashMap<&str, usize> = HashMap::new();
        let mut wanted: Vec<(usize, usize)> = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            let hit = self.cache.cache.get(&self.key(text, &options)).await;
            if hit.is_none() {
                let slot = *slot_of.entry(text).or_insert_with(|| {
                    missing.push(text);
                    missing.len() - 1
                });
                wanted.push((i, slot));
            }
            found.push(hit);
        }
        self.cache.hits.fetch_add((texts.len() - wanted.len()) as u64, Ordering::Relaxed);
        self.cache.misses.fetch_add(wanted.len() as u64, Ordering::Relaxed);
        let mut timing = Timing::default();
        if !missing.is_empty() {
            let computed = self.inner.embed(missing.iter().map(|t| (*t).to_string()).collect(), options).await?;
            timing = computed.timing;
            let mut values = Vec::with_capacity(missing.len());
            for ((text, vector), tokens) in missing.iter().zip(computed.vectors).zip(computed.token_counts) {
                let value = Arc::new(Cached { vector, tokens });
                self.cache.cache.insert(self.key(text, &options), Arc::clone(&value)).await;
                values.push(value);
            }
            for (i, slot) in wanted {
                found[i] = values.get(slot).cloned();
            }
        }
        let mut out = Embeddings {
            vectors: Vec::with_capacity(texts.len()),
            token_counts: Vec::with_capacity(texts.len()),
            timing,
        };
        for value in found.into_iter().flatten() {
            out.vectors.push(value.vector.clone());
            out.token_counts.push(value.tokens);
        }
        Ok(out)
    }
}
