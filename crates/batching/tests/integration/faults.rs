//! Fault injection through the batching provider: a model that panics, fails or stalls on
//! certain inputs, shared by many callers at once. The other callers are answered, the
//! culprits fail cleanly, and the provider keeps serving.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aki_batching::{BatchConfig, BatchingProvider, NoObserver};
use aki_core::{
    EmbedError, EmbedOptions, EmbeddingProvider, EncodeOptions, Encoding, ErrorKind, ModelInfo, ModelPipeline, Pooled,
    Pooling, Predictions, RequestContext, Result, Token, TokenVectors, Tokenization,
};
use async_trait::async_trait;

/// Token ids that make the fake model misbehave.
const PANIC: u32 = 90;
const FAIL: u32 = 91;

/// A model whose pooled vector is `[id sum, 0]`; panics on a batch holding [`PANIC`], fails on
/// one holding [`FAIL`], and takes `delay` per batch. Counts the items it computed.
struct Faulty {
    delay: Duration,
    computed: AtomicUsize,
}

impl Faulty {
    fn new(delay: Duration) -> Arc<Self> {
        Arc::new(Self { delay, computed: AtomicUsize::new(0) })
    }
}

fn info() -> ModelInfo {
    ModelInfo {
        model_id: "faulty".into(),
        dimension: 2,
        max_input_tokens: 16,
        vocab_size: 100,
        pooling: Pooling::Mean,
        normalize_default: false,
        device: "cpu".into(),
        dtype: "f32".into(),
        is_padded: false,
        engine: "test".into(),
        ..ModelInfo::default()
    }
}

/// The fault tests send token ids: no tokenizer.
struct NoTokenizer;

#[async_trait]
impl Tokenization for NoTokenizer {
    async fn encode(&self, _: Vec<String>, _: EncodeOptions) -> Result<Vec<Encoding>> {
        Err(EmbedError::Internal("the fault tests send token ids".into()))
    }

    async fn encode_pairs(&self, _: Vec<(String, String)>, _: EncodeOptions) -> Result<Vec<Encoding>> {
        Err(EmbedError::Internal("the fault tests send token ids".into()))
    }

    async fn tokenize(&self, _: Vec<String>, _: bool) -> Result<Vec<Vec<Token>>> {
        Ok(Vec::new())
    }

    async fn decode(&self, _: Vec<Vec<u32>>, _: bool) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

#[async_trait]
impl EmbeddingProvider for Faulty {
    async fn predict(&self, _: Vec<Encoding>, _: RequestContext) -> Result<Predictions> {
        Err(EmbedError::Internal("an embedder".into()))
    }

    async fn token_vectors(&self, _: Vec<Encoding>, _: RequestContext) -> Result<TokenVectors> {
        Err(EmbedError::Internal("the tests embed pooled vectors only".into()))
    }

    async fn embed(&self, batch: Vec<Encoding>, _: RequestContext) -> Result<Pooled> {
        tokio::time::sleep(self.delay).await;
        let ids = || batch.iter().flat_map(|e| e.ids.iter());
        assert!(!ids().any(|&id| id == PANIC), "injected panic");
        if ids().any(|&id| id == FAIL) {
            return Err(EmbedError::Backend("injected failure".into()));
        }
        self.computed.fetch_add(batch.len(), Ordering::SeqCst);
        Ok(Pooled {
            vectors: batch.iter().map(|e| vec![e.ids.iter().sum::<u32>() as f32, 0.0]).collect(),
            ..Pooled::default()
        })
    }
}

fn batching(model: &Arc<Faulty>, config: BatchConfig) -> Arc<ModelPipeline> {
    let inner: Arc<dyn EmbeddingProvider> = Arc::clone(model) as _;
    let batcher = BatchingProvider::dynamic_batcher(inner, false, &config, Arc::new(NoObserver));
    let batched = Arc::new(BatchingProvider::new(Arc::new(batcher)));
    Arc::new(ModelPipeline::new(info(), Arc::new(NoTokenizer), batched))
}

async fn embed(provider: &Arc<ModelPipeline>, ids: Vec<u32>, deadline: Option<Instant>) -> Result<f32> {
    let out = provider
        .embed_tokens(vec![ids], EmbedOptions::default(), RequestContext { deadline, ..RequestContext::default() })
        .await?;
    Ok(out.vectors[0][0])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_panics_or_fails_mid_batch_hurts_only_the_culprits() {
    let model = Faulty::new(Duration::from_millis(20));
    let provider = batching(&model, BatchConfig { max_batch_size: 16, ..BatchConfig::default() });
    let calls: Vec<_> = (0..40u32)
        .map(|i| {
            let provider = Arc::clone(&provider);
            let ids = match i % 10 {
                3 => vec![1, PANIC, 2],
                7 => vec![1, FAIL, 2],
                _ => vec![1, i, 2],
            };
            tokio::spawn(async move { (i, embed(&provider, ids, None).await) })
        })
        .collect();
    for call in calls {
        let (i, result) = call.await.expect("the caller's task survived");
        match i % 10 {
            3 => assert_eq!(result.expect_err("panicked").kind(), ErrorKind::Internal),
            7 => assert_eq!(result.expect_err("failed"), EmbedError::Backend("injected failure".into())),
            _ => assert_eq!(result.expect("an innocent caller is answered"), (3 + i) as f32),
        }
    }
    assert_eq!(embed(&provider, vec![5], None).await.expect("still serving"), 5.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_model_times_queued_requests_out_without_computing_them() {
    let model = Faulty::new(Duration::from_millis(400));
    let provider = batching(&model, BatchConfig { max_batch_size: 1, ..BatchConfig::default() });
    let first = tokio::spawn({
        let provider = Arc::clone(&provider);
        async move { embed(&provider, vec![1], None).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let hurried: Vec<_> = (0..5)
        .map(|i| {
            let provider = Arc::clone(&provider);
            let deadline = Some(Instant::now() + Duration::from_millis(100));
            tokio::spawn(async move { embed(&provider, vec![2, i], deadline).await })
        })
        .collect();
    for call in hurried {
        assert_eq!(call.await.expect("task").expect_err("past its deadline"), EmbedError::Timeout);
    }
    assert!(started.elapsed() < Duration::from_millis(350), "answered at the deadline, not after the stall");
    assert_eq!(first.await.expect("task").expect("the running one finishes"), 1.0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(model.computed.load(Ordering::SeqCst), 1, "expired requests were never computed");
}
