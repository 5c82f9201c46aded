//! What a batch runs on, how its items are costed, and the hooks metrics listen on.

use std::time::Duration;

use aki_core::{Lane, Result};
use async_trait::async_trait;

/// Runs one batch: one output per input, in order.
#[async_trait]
pub trait BatchHandler<I, O>: Send + Sync + 'static {
    /// Processes `items` together.
    ///
    /// # Errors
    /// Any error (or a panic). When the batch held several callers' items, each caller's items
    /// are then run again on their own, so only the callers whose own items fail see an error.
    async fn run(&self, items: Vec<I>) -> Result<Vec<O>>;
}

/// What a dispatched batch looked like, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchShape {
    /// Items in the batch.
    pub items: usize,
    /// Its cost in tokens under the batcher's budget rule: `longest x items` on a padded
    /// backend (padding included), the sum of lengths otherwise.
    pub tokens: usize,
    /// The tokens of its items (no padding); `tokens - real_tokens` is the padding computed.
    pub real_tokens: usize,
    /// The lane it was formed from.
    pub lane: Lane,
    /// How long its oldest item waited in the queue.
    pub oldest_wait: Duration,
}

/// Metrics hooks; every method defaults to doing nothing.
pub trait BatchObserver: Send + Sync + 'static {
    /// Items waiting in `_lane`, after each change.
    fn queue_depth(&self, _lane: Lane, _depth: usize) {}
    /// A batch left the queue.
    fn dispatched(&self, _shape: &BatchShape) {}
    /// A batch finished, successfully or not, after `_inference`.
    fn completed(&self, _inference: Duration, _ok: bool) {}
    /// Outputs of `_tokens` tokens were computed for callers that never received them.
    fn wasted(&self, _tokens: usize) {}
}

/// The observer used when none is given.
#[derive(Debug, Default)]
pub struct NoObserver;
impl BatchObserver for NoObserver {}

/// How the batcher measures items against `max_batch_tokens`.
pub struct Costing<I> {
    /// Cost of one item (its token count).
    pub cost: fn(&I) -> usize,
    /// True when a batch costs `longest x items` (padded backends): similar lengths are then
    /// grouped together. False when it costs the sum of lengths.
    pub padded: bool,
}
