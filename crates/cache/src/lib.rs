//! Caching for aki-embed, on moka:
//! - [`MokaModelStore`] implements the core `ModelStore` port: one shared instance per model,
//!   loaded once however many callers ask at the same time, bounded by weight bytes, with
//!   optional idle eviction and a pinned default model;
//! - [`CachedProvider`] is an `EmbeddingProvider` decorator that remembers finished vectors
//!   keyed by model, the options that change a vector, and the text.

mod config;
mod result;
mod store;

pub use config::{ModelStoreConfig, ResultCacheConfig};
pub use result::{CachedProvider, ResultCache, ResultCacheStats};
pub use store::{ModelLoader, MokaModelStore};
