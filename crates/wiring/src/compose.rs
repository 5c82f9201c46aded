//! `Engine`: the model store with each model's pipeline over its inference side wrapped
//! backend -> batcher -> result cache, the application service over it, and their readiness,
//! metrics and shutdown.

use std::sync::{Arc, Mutex, PoisonError};

use aki_backend_candle::{CandleBackend, CandleConfig};
use aki_batching::{BatchConfig, BatchingProvider, ModelInput, WeakBatcher};
use aki_cache::{CachedProvider, ModelLoader, MokaModelStore, ResultCache};
use aki_core::{EmbedError, EmbeddingProvider, LoadedModel, ModelStore, Result};
use aki_service::{BatchFacts, EmbedService};
use async_trait::async_trait;

use crate::config::AppConfig;
use crate::metrics::Metrics;

/// The batchers of loaded models, held weakly so an evicted model (and its weights) is freed.
type Batchers = Arc<Mutex<Vec<WeakBatcher<ModelInput, Vec<f32>>>>>;

/// Builds a served model: the Candle backend, warmed with one forward pass, then its inference
/// side wrapped in its batcher and the shared result cache (which caches inference outputs, so
/// text and token-id requests share it and hits never wait in the batch queue), every layer
/// reporting to metrics labelled with the model.
struct CandleLoader {
    backend: CandleConfig,
    batching: BatchConfig,
    cache: Option<ResultCache>,
    metrics: Arc<Metrics>,
    batchers: Batchers,
}

#[async_trait]
impl ModelLoader for CandleLoader {
    async fn load(&self, model_id: &str) -> Result<(LoadedModel, u64)> {
        let config = CandleConfig { model: model_id.to_string(), ..self.backend.clone() };
        let backend = tokio::task::spawn_blocking(move || CandleBackend::load(&config))
            .await
            .map_err(|e| EmbedError::Internal(format!("model loading task failed: {e}")))??;
        let bytes = backend.weight_bytes();
        let padded = backend.info().is_padded;
        let direct = backend.into_pipeline();
        direct.warm_up().await?;
        let observer = Arc::new(self.metrics.for_model(model_id));
        let batcher =
            BatchingProvider::dynamic_batcher(Arc::clone(direct.inference()), padded, &self.batching, observer.clone());
        let mut batchers = self.batchers.lock().unwrap_or_else(PoisonError::into_inner);
        batchers.retain(|b| b.upgrade().is_some());
        batchers.push(batcher.downgrade());
        drop(batchers);
        let batched: Arc<dyn EmbeddingProvider> = Arc::new(BatchingProvider::new(Arc::new(batcher)));
        let inference = match &self.cache {
            Some(cache) => Arc::new(CachedProvider::new(batched, cache.clone(), model_id, observer)) as _,
            None => batched,
        };
        let served: LoadedModel = Arc::new(direct.with_inference(inference));
        Ok((served, bytes))
    }
}

/// Everything a server adapter needs behind its routes.
pub struct Engine {
    /// The configuration the engine was built from.
    pub config: AppConfig,
    /// The application service every route calls.
    pub service: EmbedService,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    store: Arc<MokaModelStore>,
    batchers: Batchers,
}

impl Engine {
    /// Wires the store and the service; loads nothing yet (see [`Engine::start`]).
    ///
    /// # Errors
    /// A bad tenant list or keys file (see [`AppConfig::tenants`]).
    pub fn new(config: AppConfig) -> anyhow::Result<Arc<Self>> {
        let tenants = config.tenants()?;
        let metrics = Arc::new(Metrics::new());
        let batchers = Batchers::default();
        let loader = CandleLoader {
            backend: config.backend.clone(),
            batching: config.batching.clone(),
            cache: ResultCache::new(&config.result_cache),
            metrics: Arc::clone(&metrics),
            batchers: Arc::clone(&batchers),
        };
        let store_config = config.store_config();
        let models = store_config.allowed();
        let store = Arc::new(MokaModelStore::new(store_config, Arc::new(loader)));
        let batching = BatchFacts {
            max_batch_size: config.batching.max_batch_size,
            max_batch_tokens: config.batching.max_batch_tokens,
            max_concurrent_batches: config.batching.max_concurrent_batches,
            max_forward_batch: config.backend.max_forward_batch,
        };
        let service = EmbedService::new(
            Arc::clone(&store) as Arc<dyn ModelStore>,
            models,
            (config.limits.clone(), config.lanes.clone()),
            batching,
            tenants,
            Arc::clone(&metrics) as _,
        );
        Ok(Arc::new(Self { config, service, metrics, store, batchers }))
    }

    /// Loads the default model (which warms it with one forward pass); the service is ready
    /// after.
    ///
    /// # Errors
    /// The load or warm-up error.
    pub async fn start(&self) -> Result<()> {
        let started = std::time::Instant::now();
        self.store.get_or_load(&self.config.model).await?;
        self.service.mark_ready();
        tracing::info!(model = %self.config.model, elapsed_ms = started.elapsed().as_millis() as u64, "ready");
        Ok(())
    }

    /// Whether a load balancer should send work here.
    pub fn is_ready(&self) -> bool {
        self.service.is_ready()
    }

    /// The metrics in Prometheus text format.
    pub fn render_metrics(&self) -> String {
        self.metrics.render(&self.store.stats(), self.service.in_flight())
    }

    /// Stops every batcher after it has finished what is queued.
    pub async fn shutdown(&self) {
        self.service.mark_draining();
        let batchers: Vec<_> = self
            .batchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(WeakBatcher::upgrade)
            .collect();
        for batcher in batchers {
            batcher.shutdown().await;
        }
    }
}
