//! `BatchingProvider`: an `EmbeddingProvider` that sends inference for every caller through one
//! shared [`DynamicBatcher`], so adapters see the same port whether batching is on or off.

use std::sync::Arc;
use std::time::Instant;

use aki_core::{
    Batcher, EmbedOptions, EmbeddingProvider, Embeddings, EncodeOptions, Encoding, ModelInfo, Result, Timing, Token,
    vector,
};
use async_trait::async_trait;

use crate::batcher::{BatchHandler, BatchObserver, Costing, DynamicBatcher};
use crate::config::BatchConfig;

/// Runs batches on the wrapped provider.
struct InnerModel(Arc<dyn EmbeddingProvider>);

#[async_trait]
impl BatchHandler<Encoding, Vec<f32>> for InnerModel {
    async fn run(&self, items: Vec<Encoding>) -> Result<Vec<Vec<f32>>> {
        self.0.embed_encoded(items).await
    }
}

/// Batches the inference of many concurrent requests to an inner provider.
///
/// Tokenization happens before batching (the token budget needs lengths), on the inner
/// provider's own workers, concurrently with the batch that is running.
pub struct BatchingProvider {
    inner: Arc<dyn EmbeddingProvider>,
    batcher: DynamicBatcher<Encoding, Vec<f32>>,
    config: BatchConfig,
}

impl BatchingProvider {
    /// Wraps `inner`; must be called inside a tokio runtime (it starts the batcher's worker).
    pub fn new(inner: Arc<dyn EmbeddingProvider>, config: BatchConfig, observer: Arc<dyn BatchObserver>) -> Self {
        let costing = Costing { cost: Encoding::len, padded: inner.info().is_padded };
        let handler = Arc::new(InnerModel(Arc::clone(&inner)));
        let batcher = DynamicBatcher::new(config.clone(), costing, handler, observer);
        Self { inner, batcher, config }
    }

    /// The batcher, for queue depth and shutdown.
    pub fn batcher(&self) -> &DynamicBatcher<Encoding, Vec<f32>> {
        &self.batcher
    }

    fn deadline(&self, requested: Option<Instant>) -> Option<Instant> {
        requested.or_else(|| self.config.default_deadline().map(|d| Instant::now() + d))
    }
}

#[async_trait]
impl EmbeddingProvider for BatchingProvider {
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
        self.batcher.submit(batch, self.deadline(None)).await
    }

    async fn embed(&self, texts: Vec<String>, options: EmbedOptions) -> Result<Embeddings> {
        vector::check_dimensions(&options, self.info())?;
        let deadline = self.deadline(options.deadline);
        let started = Instant::now();
        let encodings = self.inner.encode(texts, options.encode).await?;
        let tokenize = started.elapsed();
        let token_counts = encodings.iter().map(Encoding::len).collect();
        let (pooled, batch) = self.batcher.submit_timed(encodings, deadline).await?;
        let info = self.info();
        let vectors = pooled.into_iter().map(|v| vector::finish(v, &options, info)).collect();
        let timing = Timing { tokenize, queue: batch.queue, inference: batch.inference };
        Ok(Embeddings { vectors, token_counts, timing })
    }
}
