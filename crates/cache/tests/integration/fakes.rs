//! A fake model and loaders shared by the tests, and mockall mocks of the inference and
//! tokenization ports.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use aki_cache::ModelLoader;
use aki_core::{
    EmbedError, EmbeddingProvider, EncodeOptions, Encoding, LoadedModel, ModelInfo, ModelPipeline, Pooled, Pooling,
    Predictions, RequestContext, Result, Token, TokenVectors, Tokenization,
};
use async_trait::async_trait;

pub fn info(model_id: &str) -> ModelInfo {
    ModelInfo {
        model_id: model_id.to_string(),
        dimension: 4,
        max_input_tokens: 16,
        vocab_size: 100,
        pooling: Pooling::Mean,
        normalize_default: true,
        device: "cpu".into(),
        dtype: "f32".into(),
        is_padded: true,
        engine: "test".into(),
        ..ModelInfo::default()
    }
}

mockall::mock! {
    pub Provider {}
    #[async_trait]
    impl EmbeddingProvider for Provider {
        async fn embed(&self, batch: Vec<Encoding>, context: RequestContext) -> Result<Pooled>;
        async fn predict(&self, batch: Vec<Encoding>, context: RequestContext) -> Result<Predictions>;
        async fn token_vectors(&self, batch: Vec<Encoding>, context: RequestContext) -> Result<TokenVectors>;
    }
}

mockall::mock! {
    pub Tokenizer {}
    #[async_trait]
    impl Tokenization for Tokenizer {
        async fn encode(&self, texts: Vec<String>, options: EncodeOptions) -> Result<Vec<Encoding>>;
        async fn encode_pairs(&self, pairs: Vec<(String, String)>, options: EncodeOptions) -> Result<Vec<Encoding>>;
        async fn decode(&self, ids: Vec<Vec<u32>>, skip_special_tokens: bool) -> Result<Vec<String>>;
        async fn tokenize(&self, texts: Vec<String>, add_special_tokens: bool) -> Result<Vec<Vec<Token>>>;
    }
}

/// A model with no behaviour beyond its info, for the store tests.
pub fn stub_model(model_id: &str) -> LoadedModel {
    Arc::new(ModelPipeline::new(info(model_id), Arc::new(MockTokenizer::new()), Arc::new(MockProvider::new())))
}

/// Loads stub models of a fixed size after a delay (50 ms unless set), counting calls; fails while
/// `failures_left` is above zero.
pub struct CountingLoader {
    pub calls: AtomicUsize,
    pub failures_left: AtomicUsize,
    pub delay_ms: AtomicU64,
    pub bytes: u64,
}

impl CountingLoader {
    pub fn new(bytes: u64) -> Arc<Self> {
        Arc::new(Self {
            calls: AtomicUsize::new(0),
            failures_left: AtomicUsize::new(0),
            delay_ms: AtomicU64::new(50),
            bytes,
        })
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl ModelLoader for CountingLoader {
    async fn load(&self, model_id: &str) -> Result<(LoadedModel, u64)> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(self.delay_ms.load(Ordering::SeqCst))).await;
        if self.failures_left.load(Ordering::SeqCst) > 0 {
            self.failures_left.fetch_sub(1, Ordering::SeqCst);
            return Err(EmbedError::Load(format!("{model_id}: injected failure")));
        }
        Ok((stub_model(model_id), self.bytes))
    }
}
