//! `Submission`: one caller's items on their way through the queue, answered once all are back
//! or at the first failure; what was computed for it and never delivered is reported as wasted.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use aki_core::{Batched, EmbedError, Result, Timing};
use tokio::sync::oneshot;

use super::handler::BatchObserver;

/// What a submission's caller receives.
pub(super) type Answer<O> = Result<Batched<O>>;

/// Answers one submission once all its items are back, or at its first failure.
pub(super) struct Submission<O> {
    state: Mutex<SubmissionState<O>>,
    /// Work still queued then is dropped and the caller answered with a timeout.
    pub(super) deadline: Option<Instant>,
    /// The caller's span, so the batch that runs its items logs inside (or linked to) it.
    pub(super) span: tracing::Span,
    /// Each item's tokens, to count what was computed.
    costs: Vec<usize>,
    observer: Arc<dyn BatchObserver>,
}

struct SubmissionState<O> {
    results: Vec<Option<O>>,
    remaining: usize,
    timing: Timing,
    reply: Option<oneshot::Sender<Answer<O>>>,
    /// Tokens of the items computed so far.
    computed: usize,
    /// The caller received its outputs.
    delivered: bool,
    /// The `queue` span (a child of the caller's), open until its first item enters a batch.
    queue: Option<tracing::Span>,
}

impl<O> Submission<O> {
    /// A submission of items costing `costs` tokens, answered on `reply`.
    pub(super) fn new(
        costs: Vec<usize>,
        deadline: Option<Instant>,
        reply: oneshot::Sender<Answer<O>>,
        observer: Arc<dyn BatchObserver>,
    ) -> Self {
        let n = costs.len();
        Self {
            state: Mutex::new(SubmissionState {
                results: (0..n).map(|_| None).collect(),
                remaining: n,
                timing: Timing::default(),
                reply: Some(reply),
                computed: 0,
                delivered: false,
                queue: Some(tracing::info_span!("queue", items = n)),
            }),
            deadline,
            span: tracing::Span::current(),
            costs,
            observer,
        }
    }

    fn lock(&self) -> MutexGuard<'_, SubmissionState<O>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answered already, or its caller has gone away (dropped future, disconnected client).
    pub(super) fn is_dead(&self) -> bool {
        self.lock().reply.as_ref().is_none_or(oneshot::Sender::is_closed)
    }

    /// Answers with `error`, unless answered already.
    pub(super) fn fail(&self, error: EmbedError) {
        if let Some(reply) = self.lock().reply.take() {
            let _ = reply.send(Err(error));
        }
    }

    /// One of its items waited `waited` in the queue; the submission reports the longest wait,
    /// and its `queue` span ends with the first.
    pub(super) fn waited(&self, waited: std::time::Duration) {
        let mut state = self.lock();
        state.timing.queue = state.timing.queue.max(waited);
        let queued = state.queue.take();
        drop(state);
        drop(queued);
    }

    /// A batch holding some of its items ran for `inference`.
    pub(super) fn ran(&self, inference: std::time::Duration) {
        self.lock().timing.inference += inference;
    }

    /// Item `index` is done; the last one answers the caller.
    pub(super) fn fill(&self, index: usize, output: O) {
        let mut state = self.lock();
        state.computed += self.costs[index];
        if state.reply.is_none() {
            return;
        }
        state.results[index] = Some(output);
        state.remaining -= 1;
        if state.remaining == 0 {
            let outputs = std::mem::take(&mut state.results).into_iter().flatten().collect();
            let timing = state.timing;
            if let Some(reply) = state.reply.take() {
                state.delivered = reply.send(Ok(Batched { outputs, timing })).is_ok();
            }
        }
    }
}

impl<O> Drop for Submission<O> {
    /// Outputs computed for a caller that never received them (it failed on another item,
    /// timed out or went away) were wasted work: the observer counts their tokens.
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if !state.delivered && state.computed > 0 {
            tracing::debug!(tokens = state.computed, "outputs computed for a request that did not receive them");
            self.observer.wasted(state.computed);
        }
    }
}
