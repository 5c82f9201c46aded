//! The worker: owns the [`Scheduler`], drops dead work, and dispatches a model call whenever a
//! batch slot is free; lives until every handle is gone (or shutdown) and the queue is drained.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use aki_core::{EmbedError, Lane};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::handle::Shared;
use super::handler::{BatchHandler, BatchShape};
use super::message::{Message, Route};
use super::run::run_and_route;
use super::schedule::Scheduler;
use crate::config::BatchConfig;
use crate::packing::Budget;

/// What a finished model call reports back: its lane, its tokens, how long the model was busy
/// with it and whether it succeeded.
type Ran = (Lane, usize, Duration, bool);

/// Owns the queue and the batches running.
pub(super) struct Worker<I, O> {
    shared: Weak<Shared<I, O>>,
    handler: Arc<dyn BatchHandler<I, O>>,
    queue: Scheduler<I, O>,
    running: JoinSet<Ran>,
}

impl<I: Clone + Send + 'static, O: Send + 'static> Worker<I, O> {
    /// A worker with an empty queue, running batches on `handler`.
    pub(super) fn new(shared: Weak<Shared<I, O>>, handler: Arc<dyn BatchHandler<I, O>>, config: &BatchConfig) -> Self {
        Self { shared, handler, queue: Scheduler::new(config.bulk_share_percent), running: JoinSet::new() }
    }

    /// The worker's loop: take what arrived, drop dead items, dispatch while a slot is free
    /// (after `max_wait` for a fuller batch, when set), then wait for a message, a finished
    /// batch or the end of the wait.
    pub(super) async fn run(
        mut self,
        mut inbox: mpsc::UnboundedReceiver<Message<I, O>>,
        config: BatchConfig,
        padded: bool,
    ) {
        let budget = |lane: Lane| Budget {
            max_items: config.max_batch_size,
            max_tokens: match lane {
                Lane::Interactive => config.max_batch_tokens,
                Lane::Bulk => config.bulk_batch_tokens.min(config.max_batch_tokens),
            },
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
            if let (true, Some(lane)) = (free, self.queue.next_lane()) {
                let ready_at = self.queue.oldest(lane).map(|t| t + max_wait).filter(|_| !max_wait.is_zero());
                let full = self.queue.items(lane) >= config.max_batch_size;
                match ready_at {
                    Some(at) if !full && !draining && Instant::now() < at => hold_until = Some(at),
                    _ => {
                        self.dispatch(lane, &budget(lane));
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
                Some(ran) = self.running.join_next(), if !self.running.is_empty() => {
                    if let Ok((lane, tokens, took, ok)) = ran {
                        self.queue.ran(lane, took);
                        // A failed call says nothing of the model's speed.
                        if let (true, Some(shared)) = (ok, self.shared.upgrade()) {
                            shared.throughput.record(lane, tokens, took);
                        }
                    }
                }
                () = sleep_until(hold_until), if hold_until.is_some() => {}
            }
        }
        for done in shutdown_replies {
            let _ = done.send(());
        }
    }

    fn accept(&mut self, message: Message<I, O>, shutdown_replies: &mut Vec<oneshot::Sender<()>>) {
        match message {
            Message::Items(arrival) => self.queue.push(arrival),
            Message::Shutdown(done) => shutdown_replies.push(done),
        }
    }

    /// `n` items of `tokens` left `lane`'s queue (dispatched or dropped).
    fn leave_queue(&self, lane: Lane, n: usize, tokens: usize) {
        if let Some(shared) = self.shared.upgrade() {
            shared.queued_tokens[lane.index()].fetch_sub(tokens, Ordering::SeqCst);
            let depth = shared.queued[lane.index()].fetch_sub(n, Ordering::SeqCst) - n;
            shared.observer.queue_depth(lane, depth);
        }
    }

    /// Removes requests whose caller is gone, whose submission already failed, or whose
    /// deadline has passed (their callers get a timeout): they are never computed.
    fn drop_dead(&mut self) {
        let now = Instant::now();
        let tokens_before = Lane::ALL.map(|lane| self.queue.tokens(lane));
        let dropped = self.queue.retain(|submission| {
            if submission.deadline.is_some_and(|d| d <= now) {
                submission.fail(EmbedError::Timeout);
                return false;
            }
            !submission.is_dead()
        });
        for lane in Lane::ALL {
            let n = dropped[lane.index()];
            if n > 0 {
                tracing::debug!(
                    dropped = n,
                    lane = lane.as_str(),
                    "dropped expired or abandoned items before inference"
                );
                self.leave_queue(lane, n, tokens_before[lane.index()] - self.queue.tokens(lane));
            }
        }
    }

    /// Takes the next model call off `lane` (see [`Scheduler::take`]) and starts it.
    fn dispatch(&mut self, lane: Lane, budget: &Budget) {
        let batch = self.queue.take(lane, budget);
        let real_tokens: usize = batch.iter().map(|p| p.cost).sum();
        self.leave_queue(lane, batch.len(), real_tokens);
        for p in &batch {
            p.submission.waited(p.enqueued.elapsed());
        }
        let shape = BatchShape {
            items: batch.len(),
            tokens: budget.cost(batch.iter().map(|p| p.cost)),
            real_tokens,
            lane,
            oldest_wait: batch.iter().map(|p| p.enqueued.elapsed()).max().unwrap_or_default(),
        };
        let observer = self.shared.upgrade().map(|s| Arc::clone(&s.observer));
        if let Some(observer) = &observer {
            observer.dispatched(&shape);
        }
        let (items, routes): (Vec<I>, Vec<Route<O>>) =
            batch.into_iter().map(|p| (p.item, (p.index, p.submission))).unzip();
        let handler = Arc::clone(&self.handler);
        self.running.spawn(async move {
            let (took, ok) = run_and_route(handler, items, routes, observer).await;
            (lane, real_tokens, took, ok)
        });
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}
