//! The `ModelStore` port: one shared, lazily loaded model pipeline per model id.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{ModelPipeline, Result};

/// A loaded model, shared by every caller that asked for it.
pub type LoadedModel = Arc<ModelPipeline>;

/// Counters and contents of a [`ModelStore`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Loaded model ids with their estimated memory (weight bytes).
    pub models: Vec<(String, u64)>,
    /// Loads performed (successful or not).
    pub loads: u64,
    /// Requests served by an already loaded model.
    pub hits: u64,
    /// Requests that had to load (or wait for a load).
    pub misses: u64,
    /// Models removed to respect the memory bound or the idle time.
    pub evictions: u64,
}

/// Holds one instance per model id, loads on first use, thread-safe.
#[async_trait]
pub trait ModelStore: Send + Sync {
    /// Returns the model `model_id`, loading it on first use; concurrent callers for the same
    /// id share one load and one instance.
    ///
    /// # Errors
    /// - [`EmbedError::NotFound`](crate::EmbedError::NotFound) when `model_id` is not one the
    ///   configuration allows (requests can never name arbitrary paths);
    /// - [`EmbedError::Load`](crate::EmbedError::Load) when loading fails (missing or corrupt
    ///   files, unknown architecture); a failed load is not remembered, the next call retries.
    async fn get_or_load(&self, model_id: &str) -> Result<LoadedModel>;

    /// Loads every id in `model_ids` now (at start-up).
    ///
    /// # Errors
    /// The first error [`get_or_load`](Self::get_or_load) returns.
    async fn preload(&self, model_ids: &[String]) -> Result<()>;

    /// Current contents and counters.
    fn stats(&self) -> StoreStats;
}
