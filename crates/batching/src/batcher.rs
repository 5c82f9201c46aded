//! `DynamicBatcher`: a cheap `Clone` handle in front of a worker task that owns the queue,
//! forms batches as soon as the model is free, and routes results back to their callers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aki_core::{Batched, Batcher, EmbedError, RequestContext, Result, Timing};
use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::config::BatchConfig;
use crate::packing::{Budget, pick};

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
    /// How long its oldest item waited in the queue.
    pub oldest_wait: Duration,
}

/// Metrics hooks; every method defaults to doing nothing.
pub trait BatchObserver: Send + Sync + 'static {
    /// Items waiting in the queue, after each change.
    fn queue_depth(&self, _depth: usize) {}
    /// A batch left the queue.
    fn dispatched(&self, _shape: &BatchShape) {}
    /// A batch finished, successfully or not, after `_inference`.
    fn completed(&self, _inference: Duration, _ok: bool) {}
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

/// Answers one submission once all its items are back, or at its first failure.
struct Submission<O> {
    state: Mutex<SubmissionState<O>>,
    deadline: Option<Instant>,
}

/// What a submission's caller receives.
type Answer<O> = Result<Batched<O>>;

struct SubmissionState<O> {
    results: Vec<Option<O>>,
    remaining: usize,
    timing: Timing,
    reply: Option<oneshot::Sender<Answer<O>>>,
}

impl<O> Submission<O> {
    fn lock(&self) -> std::sync::MutexGuard<'_, SubmissionState<O>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answered already, or its caller has gone away (dropped future, disconnected client).
    fn is_dead(&self) -> bool {
        self.lock().reply.as_ref().is_none_or(oneshot::Sender::is_closed)
    }

    fn fail(&self, error: EmbedError) {
        if let Some(reply) = self.lock().reply.take() {
            let _ = reply.send(Err(error));
        }
    }

    fn fill(&self, index: usize, output: O) {
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

/// Where an output goes: its position in its submission.
type Route<O> = (usize, Arc<Submission<O>>);

/// One queued item.
struct Pending<I, O> {
    item: I,
    index: usize,
    cost: usize,
    enqueued: Instant,
    submission: Arc<Submission<O>>,
}

enum Message<I, O> {
    Items(Vec<Pending<I, O>>),
    Shutdown(oneshot::Sender<()>),
}

struct Shared<I, O> {
    intake: mpsc::UnboundedSender<Message<I, O>>,
    /// Items submitted and not yet dispatched or dropped: the bounded queue's length.
    queued: AtomicUsize,
    closed: AtomicBool,
    config: BatchConfig,
    costing: Costing<I>,
    observer: Arc<dyn BatchObserver>,
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
        let shared = Arc::new(Shared {
            intake,
            queued: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            config,
            costing,
            observer,
        });
        let worker =
            Worker { shared: Arc::downgrade(&shared), handler, queue: VecDeque::new(), running: JoinSet::new() };
        let config = shared.config.clone();
        let padded = shared.costing.padded;
        tokio::spawn(worker.run(inbox, config, padded));
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
        let submission = Arc::new(Submission {
            state: Mutex::new(SubmissionState {
                results: (0..n).map(|_| None).collect(),
                remaining: n,
                timing: Timing::default(),
                reply: Some(reply),
            }),
            deadline,
        });
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

/// Owns the queue; lives until every handle is gone (or shutdown) and the queue is drained.
struct Worker<I, O> {
    shared: std::sync::Weak<Shared<I, O>>,
    handler: Arc<dyn BatchHandler<I, O>>,
    queue: VecDeque<Pending<I, O>>,
    running: JoinSet<()>,
}

impl<I: Clone + Send + 'static, O: Send + 'static> Worker<I, O> {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Message<I, O>>, config: BatchConfig, padded: bool) {
        let budget = Budget {
            max_items: config.max_batch_size,
            max_tokens: config.max_batch_tokens,
            padded,
            min_fill_percent: config.min_fill_percent,
        };
        let max_wait = config.max_wait();
        let mut intake_open = true;
        let mut shutdown_replies = Vec::new();
        loop {
            // Take everything that has arrived without waiting.
            while let Ok(message) = inbox.try_recv() {
                self.accept(message, &mut shutdown_replies);
            }
            self.drop_dead();
            let draining = !intake_open || !shutdown_replies.is_empty();
            let free = self.running.len() < config.max_concurrent_batches;
            let mut hold_until = None;
            if free && !self.queue.is_empty() {
                let oldest = self.queue.front().map(|p| p.enqueued);
                let ready_at = oldest.map(|t| t + max_wait).filter(|_| !max_wait.is_zero());
                let full = self.queue.len() >= budget.max_items;
                match ready_at {
                    Some(at) if !full && !draining && Instant::now() < at => hold_until = Some(at),
                    _ => {
                        self.dispatch(&budget);
                        continue;
                    }
                }
            }
            if draining && self.queue.is_empty() && self.running.is_empty() {
                break;
            }
            tokio::select! {
                message = inbox.recv(), if intake_open => match message {
                    Some(message) => self.accept(message, &mut shutdown_replies),
                    None => intake_open = false,
                },
                Some(_) = self.running.join_next(), if !self.running.is_empty() => {}
                () = sleep_until(hold_until), if hold_until.is_some() => {}
            }
        }
        for done in shutdown_replies {
            let _ = done.send(());
        }
    }

    fn accept(&mut self, message: Message<I, O>, shutdown_replies: &mut Vec<oneshot::Sender<()>>) {
        match message {
            Message::Items(items) => self.queue.extend(items),
            Message::Shutdown(done) => shutdown_replies.push(done),
        }
    }

    fn leave_queue(&self, n: usize) {
        if let Some(shared) = self.shared.upgrade() {
            let depth = shared.queued.fetch_sub(n, Ordering::SeqCst) - n;
            shared.observer.queue_depth(depth);
        }
    }

    /// Removes items whose caller is gone, whose submission already failed, or whose
    /// deadline has passed (their callers get a timeout): they are never computed.
    fn drop_dead(&mut self) {
        let now = Instant::now();
        let before = self.queue.len();
        self.queue.retain(|p| {
            if p.submission.deadline.is_some_and(|d| d <= now) {
                p.submission.fail(EmbedError::Timeout);
                return false;
            }
            !p.submission.is_dead()
        });
        let dropped = before - self.queue.len();
        if dropped > 0 {
            tracing::debug!(dropped, "dropped expired or abandoned items before inference");
            self.leave_queue(dropped);
        }
    }

    fn dispatch(&mut self, budget: &Budget) {
        let costs: Vec<usize> = self.queue.iter().map(|p| p.cost).collect();
        let chosen = pick(&costs, budget);
        let mut batch = Vec::with_capacity(chosen.len());
        // `chosen` is ascending; remove from the back so indices stay valid.
        for &i in chosen.iter().rev() {
            if let Some(p) = self.queue.remove(i) {
                batch.push(p);
            }
        }
        batch.reverse();
        self.leave_queue(batch.len());
        for p in &batch {
            let waited = p.enqueued.elapsed();
            let mut state = p.submission.lock();
            state.timing.queue = state.timing.queue.max(waited);
        }
        let shape = BatchShape {
            items: batch.len(),
            tokens: budget.cost(batch.iter().map(|p| p.cost)),
            real_tokens: batch.iter().map(|p| p.cost).sum(),
            oldest_wait: batch.iter().map(|p| p.enqueued.elapsed()).max().unwrap_or_default(),
        };
        let observer = self.shared.upgrade().map(|s| Arc::clone(&s.observer));
        if let Some(observer) = &observer {
            observer.dispatched(&shape);
        }
        let handler = Arc::clone(&self.handler);
        self.running.spawn(async move {
            let (items, routes): (Vec<I>, Vec<Route<O>>) =
                batch.into_iter().map(|p| (p.item, (p.index, p.submission))).unzip();
            // Items of a batch shared by several callers are kept, so that a failure caused by
            // one caller's input can be retried without it (below).
            let shared = routes.iter().any(|(_, s)| !Arc::ptr_eq(s, &routes[0].1));
            let kept = shared.then(|| items.clone());
            let outcome = run_batch(&handler, items, routes.len(), observer.as_deref()).await;
            credit_inference(&routes, outcome.1);
            match (outcome.0, kept) {
                (Ok(outputs), _) => fill(routes, outputs),
                (Err(error), Some(items)) => {
                    tracing::warn!(%error, items = routes.len(), "a shared batch failed; retrying each caller's items on their own");
                    for (items, routes) in by_submission(items, routes) {
                        if routes[0].1.is_dead() {
                            continue;
                        }
                        let (outcome, inference) = run_batch(&handler, items, routes.len(), observer.as_deref()).await;
                        credit_inference(&routes, inference);
                        match outcome {
                            Ok(outputs) => fill(routes, outputs),
                            Err(error) => fail(routes, &error),
                        }
                    }
                }
                (Err(error), None) => fail(routes, &error),
            }
        });
    }
}

/// Runs one batch of `expected` items, a panic in the handler becoming an internal error, and
/// reports it to the observer; returns the outcome and its duration.
async fn run_batch<I: Send + 'static, O: Send + 'static>(
    handler: &Arc<dyn BatchHandler<I, O>>,
    items: Vec<I>,
    expected: usize,
    observer: Option<&dyn BatchObserver>,
) -> (Result<Vec<O>>, Duration) {
    let started = Instant::now();
    let handler = Arc::clone(handler);
    // A panic in the handler ends only this inner task.
    let outcome = match tokio::spawn(async move { handler.run(items).await }).await {
        Ok(Ok(outputs)) if outputs.len() == expected => Ok(outputs),
        Ok(Ok(outputs)) => Err(EmbedError::Internal(format!(
            "the batch function returned {} results for {expected} items",
            outputs.len()
        ))),
        Ok(Err(error)) => Err(error),
        Err(join_error) => {
            tracing::error!(%join_error, "batch function panicked");
            Err(EmbedError::Internal("the batch function panicked".into()))
        }
    };
    let inference = started.elapsed();
    if let Some(observer) = observer {
        observer.completed(inference, outcome.is_ok());
    }
    (outcome, inference)
}

/// Each submission in a run spent `inference` on it, once however many of its items it held.
fn credit_inference<O>(routes: &[Route<O>], inference: Duration) {
    let mut credited: Vec<*const Submission<O>> = Vec::new();
    for (_, submission) in routes {
        if !credited.contains(&Arc::as_ptr(submission)) {
            credited.push(Arc::as_ptr(submission));
            submission.lock().timing.inference += inference;
        }
    }
}

fn fill<O>(routes: Vec<Route<O>>, outputs: Vec<O>) {
    for ((index, submission), output) in routes.into_iter().zip(outputs) {
        submission.fill(index, output);
    }
}

fn fail<O>(routes: Vec<Route<O>>, error: &EmbedError) {
    for (_, submission) in routes {
        submission.fail(error.clone());
    }
}

/// The items and routes of a batch, grouped by submission in order of first appearance.
fn by_submission<I, O>(items: Vec<I>, routes: Vec<Route<O>>) -> Vec<(Vec<I>, Vec<Route<O>>)> {
    let mut groups: Vec<(Vec<I>, Vec<Route<O>>)> = Vec::new();
    for (item, route) in items.into_iter().zip(routes) {
        match groups.iter_mut().find(|(_, r)| Arc::ptr_eq(&r[0].1, &route.1)) {
            Some((items, routes)) => {
                items.push(item);
                routes.push(route);
            }
            None => groups.push((vec![item], vec![route])),
        }
    }
    groups
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}
