//! `Submission`: one caller's items on their way through the queue, answered once all are back
//! or at the first failure.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use aki_core::{Batched, EmbedError, Result, Timing};
use tokio::sync::oneshot;

/// What a submission's caller receives.
pub(super) type Answer<O> = Result<Batched<O>>;

/// Answers one submission once all its items are back, or at its first failure.
pub(super) struct Submission<O> {
    state: Mutex<SubmissionState<O>>,
    /// Work still queued then is dropped and the caller answered with a timeout.
    pub(super) deadline: Option<Instant>,
    /// The caller's span, so the batch that runs its items logs inside (or linked to) it.
    pub(super) span: tracing::Span,
}

struct SubmissionState<O> {
    results: Vec<Option<O>>,
    remaining: usize,
    timing: Timing,
    reply: Option<oneshot::Sender<Answer<O>>>,
}

impl<O> Submission<O> {
    /// A submission of `n` items answered on `reply`.
    pub(super) fn new(n: usize, deadline: Option<Instant>, reply: oneshot::Sender<Answer<O>>) -> Self {
        Self {
            state: Mutex::new(SubmissionState {
                results: (0..n).map(|_| None).collect(),
                remaining: n,
                timing: Timing::default(),
                reply: Some(reply),
            }),
            deadline,
            span: tracing::Span::current(),
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

    /// One of its items waited `waited` in the queue; the submission reports the longest wait.
    pub(super) fn waited(&self, waited: std::time::Duration) {
        let mut state = self.lock();
        state.timing.queue = state.timing.queue.max(waited);
    }

    /// A batch holding some of its items ran for `inference`.
    pub(super) fn ran(&self, inference: std::time::Duration) {
        self.lock().timing.inference += inference;
    }

    /// Item `index` is done; the last one answers the caller.
    pub(super) fn fill(&self, index: usize, output: O) {
        let mut state = self.lock();
        if state.reply.is_none() {
            return;
        }
        state.results[index] = Some(output);
        state.remaining -= 1;
        if state.remaining == 0 {
            let outputs = std::mem::take(&mut state.results).into_iter().flatten().collect();
            let timing = state.timing;
            if let Some(reply) = state.reply.take() {
                let _ = reply.send(Ok(Batched { outputs, timing }));
            }
        }
    }
}
