//! `DynamicBatcher`, the cheap `Clone` handle callers submit through, and `WeakBatcher`, one
//! that does not keep the batcher alive.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use aki_core::{Batched, Batcher, EmbedError, Lane, RequestContext, Result, Timing};
use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use super::estimate::{Throughput, admit};
use super::handler::{BatchHandler, BatchObserver, Costing};
use super::message::{Arrival, Message, Pending};
use super::submission::{Answer, Submission};
use super::worker::Worker;
use crate::config::BatchConfig;

/// What the handles and the worker share.
pub(super) struct Shared<I, O> {
    intake: mpsc::UnboundedSender<Message<I, O>>,
    /// Per lane, items submitted and not yet dispatched or dropped: each lane's bounded queue.
    pub(super) queued: [AtomicUsize; 2],
    /// Per lane, the tokens of those items.
    pub(super) queued_tokens: [AtomicUsize; 2],
    /// How fast each lane's calls go, for admission.
    pub(super) throughput: Throughput,
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
            queued: Default::default(),
            queued_tokens: Default::default(),
            throughput: Throughput::default(),
            closed: AtomicBool::new(false),
            config,
            costing,
            observer,
        });
        let worker = Worker::new(Arc::downgrade(&shared), handler, &shared.config);
        tokio::spawn(worker.run(inbox, shared.config.clone(), padded));
        Self { shared }
    }

    /// A handle that does not keep this batcher (and its batch function) alive.
    pub fn downgrade(&self) -> WeakBatcher<I, O> {
        WeakBatcher { shared: Arc::downgrade(&self.shared) }
    }

    /// Items waiting in the queue now, both lanes.
    pub fn queue_depth(&self) -> usize {
        self.shared.queued.iter().map(|q| q.load(Ordering::Relaxed)).sum()
    }

    /// Stops accepting, finishes everything already queued, then returns.
    pub async fn shutdown(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        let (done, finished) = oneshot::channel();
        if self.shared.intake.send(Message::Shutdown(done)).is_ok() {
            let _ = finished.await;
        }
    }

    /// Queues `items` in the context's lane, or refuses them at once: the lane's queue is full,
    /// or the work queued ahead (at the lane's measured rate) would not let them finish before
    /// the deadline. Nothing refused is computed.
    fn enqueue(&self, items: Vec<I>, context: &RequestContext) -> Result<oneshot::Receiver<Answer<O>>> {
        let shared = &self.shared;
        if shared.closed.load(Ordering::SeqCst) {
            return Err(EmbedError::Unavailable("the batcher is shutting down".into()));
        }
        let lane = context.lane;
        let n = items.len();
        let costs: Vec<usize> = items.iter().map(shared.costing.cost).collect();
        let own: usize = costs.iter().sum();
        let now = Instant::now();
        let queued_tokens =
            [Lane::Interactive, Lane::Bulk].map(|l| shared.queued_tokens[l.index()].load(Ordering::SeqCst));
        let bulk_share = shared.config.bulk_share_percent as f64 / 100.0;
        admit(shared.throughput.finish_in(lane, own, queued_tokens, bulk_share), now, context.deadline, lane)?;
        let capacity = shared.config.queue_capacity;
        let (queued, tokens) = (&shared.queued[lane.index()], &shared.queued_tokens[lane.index()]);
        let before = queued.fetch_add(n, Ordering::SeqCst);
        if before + n > capacity {
            queued.fetch_sub(n, Ordering::SeqCst);
            return Err(EmbedError::Overloaded(format!(
                "the {} queue holds {before} of {capacity} items and cannot take {n} more",
                lane.as_str()
            )));
        }
        tokens.fetch_add(own, Ordering::SeqCst);
        shared.observer.queue_depth(lane, before + n);
        let (reply, answer) = oneshot::channel();
        let submission =
            Arc::new(Submission::new(costs.clone(), context.deadline, reply, Arc::clone(&shared.observer)));
        let pending = items
            .into_iter()
            .enumerate()
            .map(|(index, item)| Pending {
                cost: costs[index],
                item,
                index,
                enqueued: now,
                submission: Arc::clone(&submission),
            })
            .collect();
        let arrival = Arrival { lane, tenant: context.tenant.clone(), requester: context.requester, items: pending };
        if shared.intake.send(Message::Items(arrival)).is_err() {
            queued.fetch_sub(n, Ordering::SeqCst);
            tokens.fetch_sub(own, Ordering::SeqCst);
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
        let answer = self.enqueue(items, &context)?;
        let answered = match context.deadline {
            Some(deadline) => {
                tokio::time::timeout_at(deadline.into(), answer).await.map_err(|_| EmbedError::Timeout)?
            }
            None => answer.await,
        };
        answered.map_err(|_| EmbedError::Internal("the batcher dropped a request".into()))?
    }
}
