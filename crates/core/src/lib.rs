//! Ports and domain types of aki-embed, shared by every backend, decorator and adapter.
//!
//! The crate is the centre of the hexagon: it names what the product does
//! ([`EmbeddingProvider`], [`Batcher`], [`ModelStore`]) and the values that cross those
//! boundaries, and depends on nothing that runs, serves, infers or caches.

mod batcher;
mod error;
pub mod paths;
mod provider;
mod store;
mod types;
pub mod vector;

pub use batcher::{Batched, Batcher};
pub use error::{EmbedError, ErrorKind, Result};
pub use provider::{EmbeddingProvider, check_task, token_encodings};
pub use store::{LoadedModel, ModelStore, StoreStats};
pub use types::{
    EmbedOptions, Embeddings, EncodeOptions, Encoding, ModelInfo, ModelTask, Pooled, Pooling, Prompts, RequestContext,
    Timing, Token, TruncationDirection,
};
