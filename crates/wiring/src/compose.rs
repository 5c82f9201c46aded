//! `Engine`: the model store with each model wrapped backend -> batcher -> result cache, its
//! readiness, metrics and shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use aki_backend_candle::{CandleBackend, CandleConfig};
use aki_batching::{BatchConfig, BatchingProvider, WeakBatcher};
use aki_cache::{CachedProvider, ModelLoader, MokaModelStore, ResultCache};
use aki_core::{EmbedError, Encoding, LoadedModel, ModelStore, Result};
use async_trait::async_trait;

use crate::config::AppConfig;
use crate::metrics::Metrics;

/// The batchers of loaded models, held weakly so an evicted model (and its weights) is freed.
type Batchers = Arc<Mutex<Vec<WeakBatcher<Encoding, Vec<f32>>>>>;

/// Builds a served model: the Candle backend, its batcher, then the shared result cache, so
/// cache hits never wait in the batch queue.
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
        let batching = BatchingProvider::new(Arc::new(backend), self.batching.clone(), self.metrics.clone());
        let mut batchers = self.batchers.lock().unwrap_or_else(PoisonError::into_inner);
        batchers.retain(|b| b.upgrade().is_some());
        batchers.push(batching.batcher().downgrade());
        drop(batchers);
        let batched: LoadedModel = Arc::new(batching);
        let served = match &self.cache {
            Some(cache) => Arc::new(CachedProvider::new(batched, cache.clone())) as LoadedModel,
            None => batched,
        };
        Ok((served, bytes))
    }
}

/// Everything a server adapter needs behind its routes.
pub struct Engine {
    /// The configuration the engine was built from.
    pub config: AppConfig,
    /// Loaded models.
    pub store: MokaModelStore,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    cache: Option<ResultCache>,
    batchers: Batchers,
    ready: AtomicBool,
}

impl Engine {
    /// Wires the store; loads nothing yet (see [`Engine::start`]).
    pub fn new(config: AppConfig) -> Arc<Self> {
        let metrics = Arc::new(Metrics::new());
        let cache = ResultCache::new(&config.result_cache);
        let batchers = Batchers::default();
        let loader = CandleLoader {
            backend: config.backend.clone(),
            batching: config.batching.clone(),
            cache: cache.clone(),
            metrics: Arc::clone(&metrics),
            batchers: Arc::clone(&batchers),
        };
        let store = MokaModelStore::new(config.store_config(), Arc::new(loader));
        Arc::new(Self { config, store, metrics, cache, batchers, ready: AtomicBool::new(false) })
    }

    /// Loads the default model and warms it with one forward pass; the engine is ready after.
    ///
    /// # Errors
    /// The load or warm-up error.
    pub async fn start(&self) -> Result<()> {
        let started = std::time::Instant::now();
        let model = self.store.get_or_load(&self.config.model).await?;
        model.health().await?;
        self.ready.store(true, Ordering::SeqCst);
        tracing::info!(model = %self.config.model, elapsed_ms = started.elapsed().as_millis() as u64, "ready");
        Ok(())
    }

    /// Whether the default model is loaded and warmed.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// The model `requested` (or the default one).
    ///
    /// # Errors
    /// [`EmbedError::Unavailable`] before the engine is ready; the store's errors (not found,
    /// load failure) otherwise.
    pub async fn model(&self, requested: Option<&str>) -> Result<LoadedModel> {
        if !self.is_ready() {
            return Err(EmbedError::Unavailable("the model is still loading".into()));
        }
        self.store.get_or_load(requested.unwrap_or(&self.config.model)).await
    }

    /// Model ids requests may name, the default first.
    pub fn allowed_models(&self) -> Vec<String> {
        self.store.config().allowed()
    }

    /// The metrics in Prometheus text format.
    pub async fn render_metrics(&self) -> String {
        let cache = match &self.cache {
            Some(cache) => {
                let stats = cache.stats().await;
                Some((stats.hits, stats.misses))
            }
            None => None,
        };
        self.metrics.render(&self.store.stats(), cache)
    }

    /// Stops every batcher after it has finished what is queued.
    pub async fn shutdown(&self) {
        self.ready.store(false, Ordering::SeqCst);
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
