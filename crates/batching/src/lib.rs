//! Dynamic batching for aki-embed: a generic batcher implementing the core `Batcher` port,
//! and an inference `EmbeddingProvider` that routes every caller's model calls through it.
//!
//! - Continuous dispatch: a batch leaves as soon as a batch slot is free; requests arriving
//!   meanwhile form the next one. A lone request at idle waits for no timer (`max_wait` 0).
//! - Limits per batch (`max_batch_size`, `max_batch_tokens`), length-aware packing for padded
//!   backends, the oldest item always in the next batch.
//! - Submissions larger than a batch are split and reassembled in order.
//! - A bounded queue (overloaded at once when full), deadlines and cancellation (expired or
//!   abandoned items are never computed), failure and panic isolation per caller (a failed
//!   shared batch is retried caller by caller, so one client's bad input fails only that client),
//!   graceful shutdown that drains the queue.
//! - The caller's tracing span crosses the queue: a batch runs inside its caller's span, or a
//!   `batch` span linked to each of its callers'.

mod batcher;
mod config;
mod packing;
mod provider;

pub use batcher::{BatchHandler, BatchObserver, BatchShape, Costing, DynamicBatcher, NoObserver, WeakBatcher};
pub use config::BatchConfig;
pub use packing::{Budget, pick};
pub use provider::{BatchingProvider, Compute, ModelInput};
