//! Caching for aki-embed, on moka:
//! - [`MokaModelStore`] implements the core `ModelStore` port: one shared instance per model,
//!   loaded once however many callers ask at the same time, bounded by weight bytes, with
//!   optional idle eviction and a pinned default model;
//! - [`CachedProvider`] is a decorator of the inference port that remembers its outputs (pooled
//!   vectors, classifier logits) keyed by model and exact model input (token ids), so text and
//!   token-id requests share entries and per-request options are applied after it.

mod config;
mod result;
mod store;

pub use config::{ModelStoreConfig, ResultCacheConfig};
pub use result::{CacheObserver, CachedProvider, NoCacheObserver, ResultCache, ResultCacheStats};
pub use store::{ModelLoader, MokaModelStore};
