//! `MokaModelStore`: the core `ModelStore` port on moka caches, with one shared load task per
//! model.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aki_core::{EmbedError, LoadedModel, ModelStore, Result, StoreStats};
use async_trait::async_trait;
use moka::future::Cache;
use moka::policy::EvictionPolicy;
use tokio::sync::watch;

use crate::config::ModelStoreConfig;

/// Loads a model by id; handed in by the composition root (the Candle backend's loader, say).
#[async_trait]
pub trait ModelLoader: Send + Sync + 'static {
    /// Loads `model_id` and returns it with the bytes it holds in memory (its weights as the
    /// backend keeps them).
    ///
    /// # Errors
    /// [`EmbedError::Load`] (or any error) when the model cannot be loaded. Its message may name
    /// files and folders: the store logs it and gives callers a message without them.
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

/// The answer of a load task, once it has one.
type LoadAnswer = Option<Result<LoadedModel>>;

struct Inner {
    config: ModelStoreConfig,
    loader: Arc<dyn ModelLoader>,
    /// The default model when pinned: never evicted.
    pinned: Cache<String, Entry>,
    /// Every other model: bounded by weight, optionally by idle time.
    bounded: Cache<String, Entry>,
    counters: Counters,
    /// Loads running now, by model id; every caller waits on the same one.
    loading: Mutex<HashMap<String, watch::Receiver<LoadAnswer>>>,
    /// Models refused for their size: refused again without loading them.
    too_large: Mutex<HashMap<String, EmbedError>>,
}

/// A thread-safe model store: concurrent callers for one id share one load and one instance.
///
/// A load runs as a task of its own, not inside any caller's request: a caller that stops
/// waiting (its deadline passed) leaves the load running, and the next caller waits on the same
/// one instead of starting a second.
pub struct MokaModelStore {
    inner: Arc<Inner>,
}

/// moka weighs entries in `u32`; weigh in KiB so models up to 4 TiB fit.
fn kib(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
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
        let inner = Inner {
            pinned: Cache::builder().build(),
            bounded: bounded.build(),
            config,
            loader,
            counters,
            loading: Mutex::default(),
            too_large: Mutex::default(),
        };
        Self { inner: Arc::new(inner) }
    }

    /// The store's configuration.
    pub fn config(&self) -> &ModelStoreConfig {
        &self.inner.config
    }

    /// Applies pending evictions now (moka applies them lazily); stats are exact afterwards.
    pub async fn run_pending_tasks(&self) {
        self.inner.bounded.run_pending_tasks().await;
        self.inner.pinned.run_pending_tasks().await;
    }
}

impl Inner {
    fn is_pinned(&self, model_id: &str) -> bool {
        self.config.pin_default && model_id == self.config.default_model
    }

    fn cache_for(&self, model_id: &str) -> &Cache<String, Entry> {
        if self.is_pinned(model_id) { &self.pinned } else { &self.bounded }
    }

    /// The running load of `model_id`, started now if none runs; `None` when the model is
    /// already in the cache (a load finished since the caller looked).
    fn load_task(self: &Arc<Self>, model_id: &str) -> Option<watch::Receiver<LoadAnswer>> {
        let mut loading = self.loading.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(running) = loading.get(model_id) {
            return Some(running.clone());
        }
        // A finished load inserts into the cache before it leaves `loading`, so under this
        // lock a model is in one or the other.
        if self.cache_for(model_id).contains_key(model_id) {
            return None;
        }
        let (answer, waiting) = watch::channel(None);
        loading.insert(model_id.to_string(), waiting.clone());
        drop(loading);
        let (store, id) = (Arc::clone(self), model_id.to_string());
        tokio::spawn(async move {
            let result = store.load(&id).await;
            store.loading.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
            let _ = answer.send(Some(result));
        });
        Some(waiting)
    }

    /// Loads `model_id`, refuses it when it is over the weight bound, and caches it.
    async fn load(&self, model_id: &str) -> Result<LoadedModel> {
        self.counters.loads.fetch_add(1, Ordering::Relaxed);
        tracing::info!(model = %model_id, "loading model");
        let (model, bytes) = self.loader.load(model_id).await.map_err(|error| {
            // The cause may name files and folders: the log keeps it, callers get the id only.
            tracing::error!(model = %model_id, %error, "loading the model failed");
            EmbedError::Load(format!("model `{model_id}` could not be loaded; the server's log has the cause"))
        })?;
        let bound = self.config.max_weight_bytes;
        if bytes > bound && !self.is_pinned(model_id) {
            let refusal = EmbedError::Load(format!(
                "model `{model_id}` holds {} MiB of weights, more than `models.max_weight_bytes` ({} MiB) allows",
                mib(bytes),
                mib(bound)
            ));
            tracing::warn!(model = %model_id, bytes, bound, "model refused: larger than models.max_weight_bytes");
            self.too_large.lock().unwrap_or_else(PoisonError::into_inner).insert(model_id.to_string(), refusal.clone());
            return Err(refusal);
        }
        self.cache_for(model_id).insert(model_id.to_string(), Entry { model: Arc::clone(&model), bytes }).await;
        Ok(model)
    }
}

#[async_trait]
impl ModelStore for MokaModelStore {
    async fn get_or_load(&self, model_id: &str) -> Result<LoadedModel> {
        let inner = &self.inner;
        if !inner.config.allows(model_id) {
            return Err(EmbedError::NotFound(format!(
                "model `{model_id}` is not served here; available: {}",
                inner.config.allowed().join(", ")
            )));
        }
        if let Some(refusal) = inner.too_large.lock().unwrap_or_else(PoisonError::into_inner).get(model_id) {
            return Err(refusal.clone());
        }
        let cache = inner.cache_for(model_id);
        let mut counted = false;
        loop {
            if let Some(entry) = cache.get(model_id).await {
                if !counted {
                    inner.counters.hits.fetch_add(1, Ordering::Relaxed);
                }
                return Ok(entry.model);
            }
            if !counted {
                inner.counters.misses.fetch_add(1, Ordering::Relaxed);
                counted = true;
            }
            let Some(mut task) = inner.load_task(model_id) else { continue };
            let answer = task
                .wait_for(Option::is_some)
                .await
                .map_err(|_| EmbedError::Internal(format!("the load of `{model_id}` ended without an answer")))?;
            if let Some(result) = answer.as_ref() {
                return result.clone();
            }
        }
    }

    async fn preload(&self, model_ids: &[String]) -> Result<()> {
        for id in model_ids {
            self.get_or_load(id).await?;
        }
        Ok(())
    }

    fn stats(&self) -> StoreStats {
        let inner = &self.inner;
        let mut models: Vec<(String, u64)> = inner
            .pinned
            .iter()
            .chain(inner.bounded.iter())
            .map(|(id, entry)| (id.as_ref().clone(), entry.bytes))
            .collect();
        models.sort();
        StoreStats {
            models,
            loads: inner.counters.loads.load(Ordering::Relaxed),
            hits: inner.counters.hits.load(Ordering::Relaxed),
            misses: inner.counters.misses.load(Ordering::Relaxed),
            evictions: inner.counters.evictions.load(Ordering::Relaxed),
        }
    }
}
