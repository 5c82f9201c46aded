//! `BatchConfig`: the batcher's configuration section.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits and timing of a [`DynamicBatcher`](crate::DynamicBatcher).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    /// Most items in one batch.
    pub max_batch_size: usize,
    /// Most tokens in one batch: `longest x items` for padded backends, the sum of lengths
    /// otherwise. An item larger than this on its own still runs, alone.
    pub max_batch_tokens: usize,
    /// How long the oldest queued item may wait for a fuller batch when the model is free;
    /// 0 (the default) dispatches at once, so an idle server adds no latency.
    pub max_wait_ms: u64,
    /// Most items queued (not yet running); beyond it `submit` fails at once as overloaded.
    pub queue_capacity: usize,
    /// Batches running at once (1 keeps one forward pass on the device at a time).
    pub max_concurrent_batches: usize,
    /// Padded backends: least percent of a batch's padded tokens that must be real tokens
    /// (0 turns the rule off). Keeps one long input from padding many short ones.
    pub min_fill_percent: usize,
    /// Most tokens in one model call of the bulk lane: small enough that a query arriving
    /// during it waits little, large enough to keep bulk throughput (docs/benchmarks.md).
    pub bulk_batch_tokens: usize,
    /// Least share (percent) of model time the bulk lane gets while it has work, however many
    /// queries arrive; the interactive lane keeps the rest (at most 90).
    pub bulk_share_percent: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_batch_size: 32,
            max_batch_tokens: 8192,
            max_wait_ms: 0,
            queue_capacity: 4096,
            max_concurrent_batches: 1,
            min_fill_percent: 50,
            bulk_batch_tokens: 1024,
            bulk_share_percent: 50,
        }
    }
}

impl BatchConfig {
    /// [`max_wait_ms`](Self::max_wait_ms) as a duration.
    pub fn max_wait(&self) -> Duration {
        Duration::from_millis(self.max_wait_ms)
    }

    /// Checks that every limit can be met.
    ///
    /// # Errors
    /// A message naming the first key that is zero where it must not be.
    pub fn validate(&self) -> Result<(), String> {
        for (key, value) in [
            ("max_batch_size", self.max_batch_size),
            ("max_batch_tokens", self.max_batch_tokens),
            ("queue_capacity", self.queue_capacity),
            ("max_concurrent_batches", self.max_concurrent_batches),
            ("bulk_batch_tokens", self.bulk_batch_tokens),
        ] {
            if value == 0 {
                return Err(format!("batching.{key} must be at least 1"));
            }
        }
        if self.min_fill_percent > 100 {
            return Err("batching.min_fill_percent must be at most 100".into());
        }
        if self.bulk_share_percent > 90 {
            return Err("batching.bulk_share_percent must be at most 90 (queries keep the rest)".into());
        }
        Ok(())
    }
}
