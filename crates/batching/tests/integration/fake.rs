//! A hand-written fake batch function that records every batch it receives.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aki_batching::{BatchConfig, BatchHandler, Costing, DynamicBatcher, NoObserver};
use aki_core::{Batcher, EmbedError, RequestContext, Result};
use async_trait::async_trait;

/// An item: who sent it, its position, its cost, and how the fake must treat it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    pub caller: usize,
    pub index: usize,
    pub cost: usize,
    pub fail: bool,
    pub panic: bool,
}

impl Item {
    pub fn new(caller: usize, index: usize, cost: usize) -> Self {
        Self { caller, index, cost, fail: false, panic: false }
    }
}

/// Echoes `(caller, index)` for each item after `delay`; fails a batch holding a `fail` item,
/// panics on one holding a `panic` item.
#[derive(Default)]
pub struct Fake {
    pub delay: Duration,
    pub batches: Mutex<Vec<Vec<Item>>>,
}

impl Fake {
    pub fn slow(delay: Duration) -> Arc<Self> {
        Arc::new(Self { delay, ..Self::default() })
    }

    pub fn batches(&self) -> Vec<Vec<Item>> {
        self.batches.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn items_seen(&self) -> Vec<Item> {
        self.batches().into_iter().flatten().collect()
    }
}

#[async_trait]
impl BatchHandler<Item, (usize, usize)> for Fake {
    async fn run(&self, items: Vec<Item>) -> Result<Vec<(usize, usize)>> {
        self.batches.lock().unwrap_or_else(PoisonError::into_inner).push(items.clone());
        tracing::info!(items = items.len(), "fake batch runs");
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        assert!(!items.iter().any(|i| i.panic), "injected panic");
        if items.iter().any(|i| i.fail) {
            return Err(EmbedError::Backend("injected failure".into()));
        }
        Ok(items.iter().map(|i| (i.caller, i.index)).collect())
    }
}

pub fn batcher(config: BatchConfig, fake: &Arc<Fake>, padded: bool) -> DynamicBatcher<Item, (usize, usize)> {
    let costing = Costing { cost: |i: &Item| i.cost, padded };
    DynamicBatcher::new(config, costing, Arc::clone(fake) as Arc<dyn BatchHandler<_, _>>, Arc::new(NoObserver))
}

/// Submits `items` with `deadline` and keeps only the outputs.
pub async fn submit(
    b: &DynamicBatcher<Item, (usize, usize)>,
    items: Vec<Item>,
    deadline: Option<Instant>,
) -> Result<Vec<(usize, usize)>> {
    b.submit(items, RequestContext { deadline, ..RequestContext::default() }).await.map(|batched| batched.outputs)
}
