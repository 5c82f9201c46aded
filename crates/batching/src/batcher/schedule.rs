//! `Scheduler`: the queue the worker forms model calls from. Two lanes, the interactive one
//! served first while bulk keeps a minimum share of model time; in each lane, tenants served by
//! weight (start-time fair queueing on tokens), and within a tenant the request with the least
//! work left first, that work discounted by how long the request has waited, so a small request
//! is not stuck behind a large one and a larger one is not overtaken for long.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aki_core::{Lane, Tenant};

use super::message::{Arrival, Pending};
use super::submission::Submission;
use crate::packing::{Budget, pick};

/// Candidates looked at per model call, per item the call may hold: enough for a padded
/// backend to find items of similar length, few enough to stay cheap with deep queues.
const CANDIDATES_PER_ITEM: usize = 4;

/// A request queued longer than this goes before its tenant's younger ones, oldest first, so a
/// large request is not overtaken by small ones for ever.
const PATIENCE: Duration = Duration::from_secs(10);

/// How fast waiting discounts a request's work left: after waiting `n` times this, it ranks
/// as `1 / (1 + n)` of its tokens. A text of 150 tokens then waits at most about 0.4 s behind
/// a stream of 16-token ones under saturation (rather than [`PATIENCE`]), while a bulk job of
/// thousands of tokens still lets a small request go first.
const AGE_SCALE: Duration = Duration::from_millis(50);

/// One submission's items still queued, or a stream's: the items of all its submissions.
struct Request<I, O> {
    items: std::collections::VecDeque<Pending<I, O>>,
    tokens: usize,
    seq: u64,
    requester: Option<u64>,
}

/// One tenant's requests in one lane, and its place in the lane's fair order.
struct TenantQueue<I, O> {
    tenant: Tenant,
    /// Tokens served to it over its weight: the next item goes to the tenant with the least.
    served: f64,
    requests: Vec<Request<I, O>>,
}

/// One lane's tenants.
struct LaneQueue<I, O> {
    tenants: Vec<TenantQueue<I, O>>,
    items: usize,
    tokens: usize,
    /// The lane's virtual time: the most any tenant had been served when its last item was
    /// taken; never goes down.
    clock: f64,
}

impl<I, O> Default for LaneQueue<I, O> {
    fn default() -> Self {
        Self { tenants: Vec::new(), items: 0, tokens: 0, clock: 0.0 }
    }
}

/// The queue of a batcher, by lane and tenant.
pub(super) struct Scheduler<I, O> {
    lanes: [LaneQueue<I, O>; 2],
    /// Bulk's least share of model time, 0 to 0.9.
    bulk_share: f64,
    /// Model time owed to bulk, in seconds: grows while queries run and bulk waits, shrinks as
    /// bulk runs, down to minus one bulk call (so bulk run alone banks no debt).
    owed_to_bulk: f64,
    next_seq: u64,
}

impl<I, O> Scheduler<I, O> {
    /// An empty queue giving bulk at least `bulk_share_percent` of model time while it has work.
    pub(super) fn new(bulk_share_percent: usize) -> Self {
        Self {
            lanes: [LaneQueue::default(), LaneQueue::default()],
            bulk_share: (bulk_share_percent.min(90) as f64) / 100.0,
            owed_to_bulk: 0.0,
            next_seq: 0,
        }
    }

    /// Queues a submission's items at the back of its tenant's requests in its lane. A tenant
    /// that had nothing queued starts no earlier than the lane's virtual time, so time idle is
    /// not banked as a burst (and a tenant that was idle is not held back for it either).
    pub(super) fn push(&mut self, arrival: Arrival<I, O>) {
        let Arrival { lane, tenant, requester, items } = arrival;
        if items.is_empty() {
            return;
        }
        let queue = &mut self.lanes[lane.index()];
        let active = queue.tenants.iter().filter(|t| !t.requests.is_empty()).map(|t| t.served).reduce(f64::min);
        let level = active.unwrap_or(queue.clock);
        let position = match queue.tenants.iter().position(|t| t.tenant == tenant) {
            Some(position) => position,
            None => {
                queue.tenants.push(TenantQueue { tenant, served: 0.0, requests: Vec::new() });
                queue.tenants.len() - 1
            }
        };
        let entry = &mut queue.tenants[position];
        if entry.requests.is_empty() {
            entry.served = entry.served.max(level);
        }
        let tokens: usize = items.iter().map(|p| p.cost).sum();
        queue.items += items.len();
        queue.tokens += tokens;
        let stream = requester.and_then(|id| entry.requests.iter_mut().find(|r| r.requester == Some(id)));
        match stream {
            Some(request) => {
                request.items.extend(items);
                request.tokens += tokens;
            }
            None => {
                entry.requests.push(Request { items: items.into(), tokens, seq: self.next_seq, requester });
                self.next_seq += 1;
            }
        }
    }

    /// Items queued in `lane`.
    pub(super) fn items(&self, lane: Lane) -> usize {
        self.lanes[lane.index()].items
    }

    /// Tokens queued in `lane`.
    pub(super) fn tokens(&self, lane: Lane) -> usize {
        self.lanes[lane.index()].tokens
    }

    /// Nothing queued in either lane.
    pub(super) fn is_empty(&self) -> bool {
        self.lanes.iter().all(|l| l.items == 0)
    }

    /// When the oldest item of `lane` was queued.
    pub(super) fn oldest(&self, lane: Lane) -> Option<Instant> {
        self.lanes[lane.index()]
            .tenants
            .iter()
            .flat_map(|t| &t.requests)
            .filter_map(|r| r.items.front().map(|p| p.enqueued))
            .min()
    }

    /// The lane the next model call comes from: interactive while it has work, unless bulk is
    /// owed model time; bulk when only it has work.
    pub(super) fn next_lane(&self) -> Option<Lane> {
        match (self.items(Lane::Interactive) > 0, self.items(Lane::Bulk) > 0) {
            (true, true) if self.owed_to_bulk > 0.0 => Some(Lane::Bulk),
            (true, _) => Some(Lane::Interactive),
            (false, true) => Some(Lane::Bulk),
            (false, false) => None,
        }
    }

    /// A model call from `lane` took `took`: bulk is owed its share of interactive time while it
    /// waits, and pays it back as it runs (at most one call ahead).
    pub(super) fn ran(&mut self, lane: Lane, took: Duration) {
        if self.items(Lane::Bulk) == 0 {
            self.owed_to_bulk = 0.0;
            return;
        }
        let took = took.as_secs_f64();
        match lane {
            Lane::Interactive => self.owed_to_bulk += took * self.bulk_share / (1.0 - self.bulk_share),
            Lane::Bulk => self.owed_to_bulk = (self.owed_to_bulk - took).max(-took),
        }
    }

    /// Removes the items of submissions `keep` refuses (caller gone, deadline passed), asking
    /// once per run of items of one submission; returns the items removed per lane.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&Submission<O>) -> bool) -> [usize; 2] {
        let mut removed = [0; 2];
        for (lane, queue) in self.lanes.iter_mut().enumerate() {
            for tenant in &mut queue.tenants {
                for request in &mut tenant.requests {
                    let mut last: Option<(*const Submission<O>, bool)> = None;
                    request.items.retain(|p| {
                        let this = Arc::as_ptr(&p.submission);
                        let alive = match last {
                            Some((seen, alive)) if seen == this => alive,
                            _ => keep(&p.submission),
                        };
                        last = Some((this, alive));
                        if !alive {
                            removed[lane] += 1;
                            queue.items -= 1;
                            queue.tokens -= p.cost;
                            request.tokens -= p.cost;
                        }
                        alive
                    });
                }
                tenant.requests.retain(|r| !r.items.is_empty());
            }
        }
        removed
    }

    /// Takes the next model call from `lane` within `budget`: candidates in fair order (the
    /// least-served tenant's smallest request next, item by item), of which [`pick`] chooses
    /// what fits (for padded backends, items of similar length).
    pub(super) fn take(&mut self, lane: Lane, budget: &Budget) -> Vec<Pending<I, O>> {
        let queue = &mut self.lanes[lane.index()];
        let limit = budget.max_items.saturating_mul(CANDIDATES_PER_ITEM).max(1);
        let candidates = fair_order(&queue.tenants, limit, Instant::now());
        let costs: Vec<usize> =
            candidates.iter().map(|&(t, r, k)| queue.tenants[t].requests[r].items[k].cost).collect();
        let mut chosen: Vec<(usize, usize, usize)> = pick(&costs, budget).into_iter().map(|i| candidates[i]).collect();
        // Remove from the back of each request so the offsets stay valid.
        chosen.sort_unstable_by(|a, b| b.cmp(a));
        let mut batch = Vec::with_capacity(chosen.len());
        for (t, r, k) in chosen {
            let tenant = &mut queue.tenants[t];
            let request = &mut tenant.requests[r];
            if let Some(p) = request.items.remove(k) {
                request.tokens -= p.cost;
                queue.items -= 1;
                queue.tokens -= p.cost;
                queue.clock = queue.clock.max(tenant.served);
                tenant.served += p.cost as f64 / f64::from(tenant.tenant.weight);
                batch.push(p);
            }
        }
        for tenant in &mut queue.tenants {
            tenant.requests.retain(|r| !r.items.is_empty());
        }
        // Oldest first within the call, as queued.
        batch.sort_by_key(|p| p.enqueued);
        batch
    }
}

/// Up to `limit` queued items as (tenant, request, offset), in the order the lane serves them:
/// each next item from the tenant with the least tokens served over weight (counting the items
/// already listed), from its request with the least tokens left discounted by its wait
/// ([`AGE_SCALE`]; oldest first on ties), unless one has waited past [`PATIENCE`].
fn fair_order<I, O>(tenants: &[TenantQueue<I, O>], limit: usize, now: Instant) -> Vec<(usize, usize, usize)> {
    // Each tenant's requests, in the order it serves them, and how far the listing has gone.
    let orders: Vec<Vec<usize>> = tenants
        .iter()
        .map(|t| {
            // Work left discounted by the wait; past `PATIENCE`, before everything (by age).
            let rank = |request: &Request<I, O>| {
                let waited =
                    request.items.front().map_or(Duration::ZERO, |p| now.saturating_duration_since(p.enqueued));
                let discount = 1.0 + waited.as_secs_f64() / AGE_SCALE.as_secs_f64();
                if waited > PATIENCE { f64::NEG_INFINITY } else { request.tokens as f64 / discount }
            };
            let mut ranked: Vec<(f64, u64, usize)> =
                t.requests.iter().enumerate().map(|(r, request)| (rank(request), request.seq, r)).collect();
            ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            ranked.into_iter().map(|(.., r)| r).collect()
        })
        .collect();
    let mut served: Vec<f64> = tenants.iter().map(|t| t.served).collect();
    let mut cursor: Vec<(usize, usize)> = vec![(0, 0); tenants.len()];
    let mut listed = Vec::new();
    while listed.len() < limit {
        let next = (0..tenants.len())
            .filter(|&t| cursor[t].0 < orders[t].len())
            .min_by(|&a, &b| served[a].total_cmp(&served[b]));
        let Some(t) = next else { break };
        let (ref mut request_at, ref mut item_at) = cursor[t];
        let r = orders[t][*request_at];
        let request = &tenants[t].requests[r];
        listed.push((t, r, *item_at));
        served[t] += request.items[*item_at].cost as f64 / f64::from(tenants[t].tenant.weight);
        *item_at += 1;
        if *item_at == request.items.len() {
            *request_at += 1;
            *item_at = 0;
        }
    }
    listed
}
