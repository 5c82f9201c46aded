//! Dynamic batching for aki-embed: a generic batcher implementing the core `Batcher` port,
//! and an `EmbeddingProvider` that routes single requests through it.
//!
//! This crate depends on `aki-core` only; it is filled by the batching issue.
