//! `MokaModelStore`: the core `ModelStore` port on moka caches.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aki_core::{EmbedError, LoadedModel, ModelStore, Result, StoreStats};
use async_trait::async_trait;
use moka::future::Cache;
use moka::policy::EvictionPolicy;

use crate::config::ModelStoreConfig;

/// Loads a model by id; handed in by the composition root (the Candle backend's loader, say).
#[async_trait]
pub trait ModelLoader: Send + Sync + 'static {
    /// Loads `model_id` and returns it with its estimated memory in bytes (its weights).
    ///
    /// # Errors
    /// [`EmbedError::Load`] (or any error) when the model cannot be loaded.
    async fn load(&self, model_id: &str) -> Result<(LoadedModel, u64)>;
}

#[derive(Clone)]
struct Entry {
    model: LoadedModel,
    bytes: u64,
}

#[derive(Default)]
struct Counters {
    loads: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: Arc<AtomicU64>,
}

/// A thread-safe model store: concurrent callers for one id share one load and one instance.
pub struct MokaModelStore {
    config: ModelStoreConfig,
    loader: Arc<dyn ModelLoader>,
    /// The default model when pinned: never evicted.
    pinned: Cache<String, Entry>,
    /// Every other model: bounded by weight, optionally by idle time.
    bounded: Cache<String, Entry>,
    counters: Counters,
}

/// moka weighs entries in `u32`; weigh in KiB so models up to 4 TiB fit.
fn kib(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

impl MokaModelStore {
    /// A store serving the models `config` allows, loading them through `loader`.
    pub fn new(config: ModelStoreConfig, loader: Arc<dyn ModelLoader>) -> Self {
        let counters = Counters::default();
        let evictions = Arc::clone(&counters.evictions);
        let mut bounded = Cache::builder()
            .max_capacity(config.max_weight_bytes.div_ceil(1024))
            .weigher(|_: &String, e: &Entry| kib(e.bytes))
            .eviction_policy(EvictionPolicy::lru())
            .eviction_listener(move |id, _, cause| {
                if cause.was_evicted() {
                    tracing::info!(model = %id, ?cause, "model unloaded");
                    evictions.fetch_add(1, Ordering::Relaxed);
                }
            });
        if config.time_to_idle_secs > 0 {
            bounded = bounded.time_to_idle(Duration::from_secs(config.time_to_idle_secs));
        }
        Self { pinned: Cache::builder().build(), bounded: bounded.build(), config, loader, counters }
    }

    /// The store's configuration.
    pub fn config(&self) -> &ModelStoreConfig {
        &self.config
    }

    /// Applies pending evictions now (moka applies them lazily); stats are exact afterwards.
    pub async fn run_pending_tasks(&self) {
        self.bounded.run_pending_tasks().await;
        self.pinned.run_pending_tasks().await;
    }

    fn cache_for(&self, model_id: &str) -> &Cache<String, Entry> {
        if self.config.pin_default && model_id == self.config.default_model { &self.pinned } else { &self.bounded }
    }
}

#[async_trait]
impl ModelStore for MokaModelStore {
    async fn get_or_load(&self, model_id: &str) -> Result<LoadedModel> {
        if !self.config.allows(model_id) {
            return Err(EmbedError::NotFound(format!(
                "model `{model_id}` is not served here; available: {}",
                self.config.allowed().join(", ")
            )));
        }
        let cache = self.cache_for(model_id);
        if let Some(entry) = cache.get(model_id).await {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(entry.model);
        }
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        let load = async {
            self.counters.loads.fetch_add(1, Ordering::Relaxed);
            tracing::info!(model = %model_id, "loading model");
            let (model, bytes) = self.loader.load(model_id).await?;
            if bytes > self.config.max_weight_bytes && !std::ptr::eq(cache, &self.pinned) {
                tracing::warn!(model = %model_id, bytes, bound = self.config.max_weight_bytes, "model is larger than max_weight_bytes; it will not stay loaded");
            }
            Ok::<_, EmbedError>(Entry { model, bytes })
        };
        cache.try_get_with(model_id.to_string(), load).await.map(|e| e.model).map_err(|e| (*e).clone())
    }

    async fn preload(&self, model_ids: &[String]) -> Result<()> {
        for id in model_ids {
            self.get_or_load(id).await?;
        }
        Ok(())
    }

    fn stats(&self) -> StoreStats {
        let mut models: Vec<(String, u64)> = self
            .pinned
            .iter()
            .chain(self.bounded.iter())
            .map(|(id, entry)| (id.as_ref().clone(), entry.bytes))
            .collect();
        models.sort();
        StoreStats {
            models,
            loads: self.counters.loads.load(Ordering::Relaxed),
            hits: self.counters.hits.load(Ordering::Relaxed),
            misses: self.counters.misses.load(Ordering::Relaxed),
            evictions: self.counters.evictions.load(Ordering::Relaxed),
        }
    }
}
