//! Caching for aki-embed: a moka-backed `ModelStore` (one shared instance per model) and a
//! result-cache decorator of `EmbeddingProvider`.
//!
//! This crate depends on `aki-core` only; it is filled by the model-store issue.
