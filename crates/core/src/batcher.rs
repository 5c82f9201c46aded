//! The `Batcher` port: many concurrent submissions become few, well-filled calls.

use async_trait::async_trait;

use crate::{RequestContext, Result, Timing};

/// The results of one submission, in the order of its items, with where its time went.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Batched<O> {
    /// One result per submitted item, in order.
    pub outputs: Vec<O>,
    /// The longest queue wait of its items and the time of the batches that held them
    /// (`tokenize` is zero: batching sees items, not texts).
    pub timing: Timing,
}

/// Collects items submitted by many callers into batches, runs each batch once, and routes
/// every result back to the caller that submitted it, in the caller's order.
///
/// Generic over the item `I` and result `O` so it serves more than embeddings. Consumed as
/// `dyn Batcher` by the batching `EmbeddingProvider`, so the queue behind it can be replaced
/// (a test double, a remote queue) without touching the provider.
#[async_trait]
pub trait Batcher<I, O>: Send + Sync
where
    I: Send + 'static,
    O: Send + 'static,
{
    /// Submits `items` and waits for their results, one per item, in order. A submission
    /// larger than one batch is split across batches and reassembled.
    ///
    /// # Errors
    /// - [`EmbedError::Overloaded`](crate::EmbedError::Overloaded) at once when the bounded
    ///   queue cannot take the items;
    /// - [`EmbedError::Timeout`](crate::EmbedError::Timeout) when `context.deadline` passes
    ///   before the items run (they are then dropped, not computed);
    /// - [`EmbedError::Unavailable`](crate::EmbedError::Unavailable) when the batcher is
    ///   shutting down or its worker has stopped;
    /// - the batch function's error when it fails on this submission's own items (a failure
    ///   caused by another caller's items in a shared batch MUST NOT reach this one), or
    ///   [`EmbedError::Internal`](crate::EmbedError::Internal) when it panicked on them.
    async fn submit(&self, items: Vec<I>, context: RequestContext) -> Result<Batched<O>>;
}
