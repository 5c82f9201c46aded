//! What the handle sends the worker: a request's queued items, or a request to drain and stop.

use std::sync::Arc;
use std::time::Instant;

use aki_core::{Lane, Tenant};
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

/// One submission's items, in order, with the lane they wait in and whose they are.
pub(super) struct Arrival<I, O> {
    pub(super) lane: Lane,
    pub(super) tenant: Tenant,
    /// The stream they come from, whose submissions queue as one request.
    pub(super) requester: Option<u64>,
    pub(super) items: Vec<Pending<I, O>>,
}

/// A message from a handle to the worker.
pub(super) enum Message<I, O> {
    /// A submission's items.
    Items(Arrival<I, O>),
    /// Stop taking work, finish what is queued, then answer.
    Shutdown(oneshot::Sender<()>),
}
