//! `BatchingProvider`: an `EmbeddingProvider` that sends inference for every caller through one
//! shared `Batcher`, so adapters see the same port whether batching is on or off.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aki_core::{Batcher, EmbeddingProvider, EncodeOptions, Encoding, ModelInfo, Pooled, RequestContext, Result, Token};
use async_trait::async_trait;

use crate::batcher::{BatchHandler, BatchObserver, Costing, DynamicBatcher};
use crate::config::BatchConfig;

/// Runs batches on the wrapped provider. The batch as a whole has no deadline: each item's
/// own deadline was checked when the batch was formed.
struct InnerModel(Arc<dyn EmbeddingProvider>);

#[async_trait]
impl BatchHandler<Encoding, Vec<f32>> for InnerModel {
    async fn run(&self, items: Vec<Encoding>) -> Result<Vec<Vec<f32>>> {
        Ok(self.0.embed_encoded(items, RequestContext::default()).await?.vectors)
    }
}

/// Batches the inference of many concurrent requests to an inner provider.
///
/// Tokenization happens before batching (the token budget needs lengths), on the inner
/// provider's own workers, concurrently with the batch that is running.
pub struct BatchingProvider {
    inner: Arc<dyn EmbeddingProvider>,
    batcher: Arc<dyn Batcher<Encoding, Vec<f32>>>,
    default_deadline: Option<Duration>,
}

impl BatchingProvider {
    /// Routes the inference of `inner` through `batcher`; work that brings no deadline gets
    /// `default_deadline`.
    pub fn new(
        inner: Arc<dyn EmbeddingProvider>,
        batcher: Arc<dyn Batcher<Encoding, Vec<f32>>>,
        default_deadline: Option<Duration>,
    ) -> Self {
        Self { inner, batcher, default_deadline }
    }

    /// A [`DynamicBatcher`] whose batches run on `inner`, costed by token count (padded or
    /// not, as `inner` says); must be called inside a tokio runtime (it starts the worker).
    pub fn dynamic_batcher(
        inner: &Arc<dyn EmbeddingProvider>,
        config: &BatchConfig,
        observer: Arc<dyn BatchObserver>,
    ) -> DynamicBatcher<Encoding, Vec<f32>> {
        let costing = Costing { cost: Encoding::len, padded: inner.info().is_padded };
        DynamicBatcher::new(config.clone(), costing, Arc::new(InnerModel(Arc::clone(inner))), observer)
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

    async fn encode_pairs(&self, query: String, texts: Vec<String>, options: EncodeOptions) -> Result<Vec<Encoding>> {
        self.inner.encode_pairs(query, texts, options).await
    }

    async fn tokenize(&self, texts: Vec<String>, add_special_tokens: bool) -> Result<Vec<Vec<Token>>> {
        self.inner.tokenize(texts, add_special_tokens).await
    }

    async fn embed_encoded(&self, batch: Vec<Encoding>, context: RequestContext) -> Result<Pooled> {
        let deadline = context.deadline.or_else(|| self.default_deadline.map(|d| Instant::now() + d));
        let batched = self.batcher.submit(batch, RequestContext { deadline }).await?;
        Ok(Pooled { vectors: batched.outputs, timing: batched.timing })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aki_core::{Batched, EmbedOptions, Pooling, Timing};

    use super::*;

    mockall::mock! {
        Queue {}
        #[async_trait]
        impl Batcher<Encoding, Vec<f32>> for Queue {
            async fn submit(&self, items: Vec<Encoding>, context: RequestContext) -> Result<Batched<Vec<f32>>>;
        }
    }

    mockall::mock! {
        Model {}
        #[async_trait]
        impl EmbeddingProvider for Model {
            fn info(&self) -> &ModelInfo;
            async fn health(&self) -> Result<()>;
            async fn encode(&self, texts: Vec<String>, options: EncodeOptions) -> Result<Vec<Encoding>>;
            async fn tokenize(&self, texts: Vec<String>, add_special_tokens: bool) -> Result<Vec<Vec<Token>>>;
            async fn embed_encoded(&self, batch: Vec<Encoding>, context: RequestContext) -> Result<Pooled>;
        }
    }

    fn model() -> Arc<dyn EmbeddingProvider> {
        let mut model = MockModel::new();
        model.expect_info().return_const(ModelInfo {
            model_id: "m".into(),
            dimension: 2,
            max_input_tokens: 8,
            vocab_size: 10,
            pooling: Pooling::Mean,
            normalize_default: false,
            device: "cpu".into(),
            dtype: "f32".into(),
            is_padded: false,
            engine: "test".into(),
            ..ModelInfo::default()
        });
        model.expect_encode().returning(|texts, _| {
            Ok(texts.iter().map(|_| Encoding { ids: vec![1, 2], type_ids: vec![0, 0] }).collect())
        });
        model.expect_embed_encoded().never();
        Arc::new(model)
    }

    #[tokio::test]
    async fn inference_goes_through_the_batcher_port_with_the_requests_deadline_or_the_default() {
        let timing =
            Timing { queue: Duration::from_millis(3), inference: Duration::from_millis(7), ..Timing::default() };
        let mut queue = MockQueue::new();
        let given = Instant::now() + Duration::from_secs(5);
        queue
            .expect_submit()
            .withf(move |items, context| items.len() == 1 && context.deadline == Some(given))
            .times(1)
            .returning(move |_, _| Ok(Batched { outputs: vec![vec![3.0, 4.0]], timing }));
        queue
            .expect_submit()
            .withf(|_, context| context.deadline.is_some_and(|d| d > Instant::now() + Duration::from_secs(50)))
            .times(1)
            .returning(move |_, _| Ok(Batched { outputs: vec![vec![1.0, 0.0]], timing }));
        let provider = BatchingProvider::new(model(), Arc::new(queue), Some(Duration::from_secs(60)));
        let out =
            provider.embed(vec!["a".into()], EmbedOptions::default(), RequestContext::until(given)).await.expect("ok");
        assert_eq!(
            (out.vectors, out.timing.queue, out.timing.inference),
            (vec![vec![3.0, 4.0]], timing.queue, timing.inference)
        );
        let defaulted = provider.embed_tokens(vec![vec![1, 2]], EmbedOptions::default(), RequestContext::default());
        assert_eq!(defaulted.await.expect("ok").vectors, vec![vec![1.0, 0.0]]);
    }
}
