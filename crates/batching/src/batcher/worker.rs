//! The worker: owns the queue, drops dead work, and dispatches a batch whenever a batch slot is
//! free; lives until every handle is gone (or shutdown) and the queue is drained.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Instant;

use aki_core::EmbedError;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::handle::Shared;
use super::handler::{BatchHandler, BatchShape};
use super::message::{Message, Pending, Route};
use super::run::run_and_route;
use crate::config::BatchConfig;
use crate::packing::{Budget, pick};

/// Owns the queue and the batches running.
pub(super) struct Worker<I, O> {
    shared: Weak<Shared<I, O>>,
    handler: Arc<dyn BatchHandler<I, O>>,
    queue: VecDeque<Pending<I, O>>,
    running: JoinSet<()>,
}

impl<I: Clone + Send + 'static, O: Send + 'static> Worker<I, O> {
    /// A worker with an empty queue, running batches on `handler`.
    pub(super) fn new(shared: Weak<Shared<I, O>>, handler: Arc<dyn BatchHandler<I, O>>) -> Self {
        Self { shared, handler, queue: VecDeque::new(), running: JoinSet::new() }
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

    /// Takes the next batch off the queue (see [`pick`]) and starts it.
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
            p.submission.waited(p.enqueued.elapsed());
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
        let (items, routes): (Vec<I>, Vec<Route<O>>) =
            batch.into_iter().map(|p| (p.item, (p.index, p.submission))).unzip();
        self.running.spawn(run_and_route(Arc::clone(&self.handler), items, routes, observer));
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}
