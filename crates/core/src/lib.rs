//! Ports and domain types of aki-embed, shared by every backend, decorator and adapter.
//!
//! The crate is the centre of the hexagon: it names what the product does (the inference port
//! [`EmbeddingProvider`], the [`Tokenization`] port, [`Batcher`], [`ModelStore`]), joins the
//! first two in the one request path through a model ([`ModelPipeline`]), and holds the values
//! that cross those boundaries. It depends on nothing that runs, serves, infers or caches.

mod batcher;
mod calibrate;
mod context;
pub mod encoding;
mod error;
pub mod paths;
mod pipeline;
mod provider;
pub mod quantize;
mod store;
mod tokenization;
mod types;
pub mod vector;
mod windows;

pub use batcher::{Batched, Batcher};
pub use context::{Lane, Priority, RequestContext, Tenant};
pub use error::{EmbedError, ErrorKind, Result};
pub use pipeline::{ModelPipeline, Prepared};
pub use provider::EmbeddingProvider;
pub use store::{LoadedModel, ModelStore, StoreStats};
pub use tokenization::Tokenization;
pub use types::{
    ClassifierInput, EmbedOptions, Embeddings, EncodeOptions, Encoding, LongInputs, ModelInfo, ModelTask, Pooled,
    Pooling, Predictions, Prompts, Scores, Timing, Token, TokenEmbeddings, TokenVectors, TruncationDirection,
};
