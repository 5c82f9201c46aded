//! `DynamicBatcher`, the cheap `Clone` handle callers submit through, and `WeakBatcher`, one
//! that does not keep the batcher alive.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use aki_core::{Batched, Batcher, EmbedError, RequestContext, Result, Timing};
use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use super::handler::{BatchHandler, BatchObserver, Costing};
use super::message::{Message, Pending};
use super::submission::{Answer, Submission};
use super::worker::Worker;
use crate::config::BatchConfig;

/// What the handles and the worker share.
pub(super) struct Shared<I, O> {
    intake: mpsc::UnboundedSender<Message<I, O>>,
    /// Items submitted and not yet dispatched or dropped: the bounded queue's length.
    pub(super) queued: AtomicUsize,
    closed: AtomicBool,
    pub(super) config: BatchConfig,
    costing: Costing<I>,
    pub(super) observer: Arc<dyn BatchObserver>,
}

/// A dynamic batcher over items `I` with results `O`; clones share one queue and worker.
pub struct DynamicBatcher<I, O> {
    shared: Arc<Shared<I, O>>,
}

impl<I, O> Clone for DynamicBatcher<I, O> {
    fn clone(&self) -> Self {
        Self { shared: Arc::clone(&self.shared) }
    }
}

/// A handle that does not keep the batcher alive: once every [`DynamicBatcher`] is gone the
/// worker ends and [`upgrade`](Self::upgrade) returns `None`.
pub struct WeakBatcher<I, O> {
    shared: std::sync::Weak<Shared<I, O>>,
}

impl<I, O> WeakBatcher<I, O> {
    /// The batcher, if it still exists.
    pub fn upgrade(&self) -> Option<DynamicBatcher<I, O>> {
        self.shared.upgrade().map(|shared| DynamicBatcher { shared })
    }
}

impl<I: Clone + Send + 'static, O: Send + 'static> DynamicBatcher<I, O> {
    /// Starts the worker on the current tokio runtime and returns its handle.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(
        config: BatchConfig,
        costing: Costing<I>,
        handler: Arc<dyn BatchHandler<I, O>>,
        observer: Arc<dyn BatchObserver>,
    ) -> Self {
        let (intake, inbox) = mpsc::unbounded_channel();
        let padded = costing.padded;
        let shared = Arc::new(Shared {
            intake,
            queued: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            config,
            costing,
            observer,
        });
        let worker = Worker::new(Arc::downgrade(&shared), handler);
        tokio::spawn(worker.run(inbox, shared.config.clone(), padded));
        Self { shared }
    }

    /// A handle that does not keep this batcher (and its batch function) alive.
    pub fn downgrade(&self) -> WeakBatcher<I, O> {
        WeakBatcher { shared: Arc::downgrade(&self.shared) }
    }

    /// Items waiting in the queue now.
    pub fn queue_depth(&self) -> usize {
        self.shared.queued.load(Ordering::Relaxed)
    }

    /// Stops accepting, finishes everything already queued, then returns.
    pub async fn shutdown(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        let (done, finished) = oneshot::channel();
        if self.shared.intake.send(Message::Shutdown(done)).is_ok() {
            let _ = finished.await;
        }
    }

    fn enqueue(&self, items: Vec<I>, deadline: Option<Instant>) -> Result<oneshot::Receiver<Answer<O>>> {
        let shared = &self.shared;
        if shared.closed.load(Ordering::SeqCst) {
            return Err(EmbedError::Unavailable("the batcher is shutting down".into()));
        }
        let n = items.len();
        let capacity = shared.config.queue_capacity;
        let before = shared.queued.fetch_add(n, Ordering::SeqCst);
        if before + n > capacity {
            shared.queued.fetch_sub(n, Ordering::SeqCst);
            return Err(EmbedError::Overloaded(format!(
                "the queue holds {before} of {capacity} items and cannot take {n} more"
            )));
        }
        shared.observer.queue_depth(before + n);
        let (reply, answer) = oneshot::channel();
        let submission = Arc::new(Submission::new(n, deadline, reply));
        let now = Instant::now();
        let pending = items
            .into_iter()
            .enumerate()
            .map(|(index, item)| Pending {
                cost: (shared.costing.cost)(&item),
                item,
                index,
                enqueued: now,
                submission: Arc::clone(&submission),
            })
            .collect();
        if shared.intake.send(Message::Items(pending)).is_err() {
            shared.queued.fetch_sub(n, Ordering::SeqCst);
            return Err(EmbedError::Unavailable("the batcher's worker has stopped".into()));
        }
        Ok(answer)
    }
}

#[async_trait]
impl<I: Clone + Send + 'static, O: Send + 'static> Batcher<I, O> for DynamicBatcher<I, O> {
    async fn submit(&self, items: Vec<I>, context: RequestContext) -> Answer<O> {
        if items.is_empty() {
            return Ok(Batched { outputs: Vec::new(), timing: Timing::default() });
        }
        let answer = self.enqueue(items, context.deadline)?;
        let answered = match context.deadline {
            Some(deadline) => {
                tokio::time::timeout_at(deadline.into(), answer).await.map_err(|_| EmbedError::Timeout)?
            }
            None => answer.await,
        };
        answered.map_err(|_| EmbedError::Internal("the batcher dropped a request".into()))?
    }
}
