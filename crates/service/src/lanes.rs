//! `LanePolicy`: the `[lanes]` configuration section: which lane a request waits in (by its
//! tokens, unless it asks for one), and how long work of each lane may take. `Requester`: a
//! client sending many requests on one stream, counted as one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aki_core::{Lane, Priority};
use serde::{Deserialize, Serialize};

/// How requests are put in lanes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LanePolicy {
    /// A request (or a stream, counting its requests of the last 10 s) of more tokens than this
    /// goes to the bulk lane unless it asks otherwise (`priority`).
    pub bulk_above_tokens: usize,
    /// How long a bulk-lane request may take, in milliseconds (the interactive lane's is
    /// `limits.request_timeout_ms`). Admission refuses at once, with `Retry-After`, a bulk
    /// request that the work queued ahead would keep past it.
    pub bulk_timeout_ms: u64,
}

impl Default for LanePolicy {
    fn default() -> Self {
        Self { bulk_above_tokens: 1024, bulk_timeout_ms: 600_000 }
    }
}

impl LanePolicy {
    /// The lane of a request of `tokens` asking for `priority`, from `requester` when it is
    /// one of a stream's (whose tokens then count together).
    pub fn lane(&self, priority: Priority, tokens: usize, requester: Option<&Requester>) -> Lane {
        let so_far = requester.map_or(tokens, |r| r.add(tokens));
        match priority {
            Priority::Interactive => Lane::Interactive,
            Priority::Bulk => Lane::Bulk,
            Priority::Auto if so_far > self.bulk_above_tokens => Lane::Bulk,
            Priority::Auto => Lane::Interactive,
        }
    }

    /// [`bulk_timeout_ms`](Self::bulk_timeout_ms) as a duration.
    pub fn bulk_timeout(&self) -> Duration {
        Duration::from_millis(self.bulk_timeout_ms)
    }
}

/// How long a stream's tokens count together: a stream sending more than
/// `bulk_above_tokens` within it is bulk, while one that sends a few queries now and then,
/// for hours, stays interactive.
const STREAM_WINDOW: Duration = Duration::from_secs(10);

/// One client sending many requests on one stream: its recent tokens add up for the lane, and
/// the batcher queues its requests as one for fairness.
#[derive(Debug, Clone)]
pub struct Requester {
    id: u64,
    /// The current window's start and the tokens sent in it.
    window: Arc<Mutex<(Instant, usize)>>,
}

impl Requester {
    /// A new requester, with an id no other has.
    pub fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self { id: NEXT.fetch_add(1, Ordering::Relaxed), window: Arc::new(Mutex::new((Instant::now(), 0))) }
    }

    /// Its id, as the batcher groups its work.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Counts `tokens` more; returns its tokens in the current window.
    fn add(&self, tokens: usize) -> usize {
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        if window.0.elapsed() > STREAM_WINDOW {
            *window = (Instant::now(), 0);
        }
        window.1 += tokens;
        window.1
    }
}

impl Default for Requester {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for Requester {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_decides_unless_the_request_asks_and_a_stream_counts_as_one() {
        let policy = LanePolicy { bulk_above_tokens: 100, ..LanePolicy::default() };
        assert_eq!(policy.lane(Priority::Auto, 100, None), Lane::Interactive);
        assert_eq!(policy.lane(Priority::Auto, 101, None), Lane::Bulk);
        assert_eq!(policy.lane(Priority::Interactive, 5000, None), Lane::Interactive);
        assert_eq!(policy.lane(Priority::Bulk, 1, None), Lane::Bulk);
        let stream = Requester::new();
        let lanes: Vec<Lane> = (0..12).map(|_| policy.lane(Priority::Auto, 10, Some(&stream))).collect();
        assert_eq!(lanes.iter().filter(|l| **l == Lane::Bulk).count(), 2, "after 100 tokens a stream is bulk");
        assert_ne!(Requester::new(), stream);
    }
}
