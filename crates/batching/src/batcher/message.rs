//! What the handle sends the worker: queued items, or a request to drain and stop.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::oneshot;

use super::submission::Submission;

/// Where an output goes: its position in its submission.
pub(super) type Route<O> = (usize, Arc<Submission<O>>);

/// One queued item.
pub(super) struct Pending<I, O> {
    pub(super) item: I,
    pub(super) index: usize,
    pub(super) cost: usize,
    pub(super) enqueued: Instant,
    pub(super) submission: Arc<Submission<O>>,
}

/// A message from a handle to the worker.
pub(super) enum Message<I, O> {
    /// A submission's items, in order.
    Items(Vec<Pending<I, O>>),
    /// Stop taking work, finish what is queued, then answer.
    Shutdown(oneshot::Sender<()>),
}
