//! Properties of the batcher over random workloads: every caller gets exactly its own results,
//! in order, once; nothing is lost or duplicated; no batch breaks its limits.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use aki_batching::{BatchConfig, Budget};
use aki_core::EmbedError;
use proptest::prelude::*;

use crate::fake::{Fake, Item, batcher, submit};

#[derive(Debug, Clone)]
struct Workload {
    /// Per caller: the cost of each item, and whether the caller's first item is poisoned.
    callers: Vec<(Vec<usize>, bool)>,
    max_batch_size: usize,
    max_batch_tokens: usize,
    padded: bool,
    delay_ms: u64,
}

fn workload() -> impl Strategy<Value = Workload> {
    (
        prop::collection::vec((prop::collection::vec(1usize..40, 1..70), prop::bool::weighted(0.15)), 1..24),
        1usize..40,
        40usize..400,
        any::<bool>(),
        0u64..3,
    )
        .prop_map(|(callers, max_batch_size, max_batch_tokens, padded, delay_ms)| Workload {
            callers,
            max_batch_size,
            max_batch_tokens,
            padded,
            delay_ms,
        })
}

fn run(w: &Workload) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let fake = Fake::slow(Duration::from_millis(w.delay_ms));
        let config = BatchConfig {
            max_batch_size: w.max_batch_size,
            max_batch_tokens: w.max_batch_tokens,
            ..BatchConfig::default()
        };
        let b = batcher(config, &fake, w.padded);
        let calls: Vec<_> = w
            .callers
            .iter()
            .enumerate()
            .map(|(caller, (costs, poisoned))| {
                let items: Vec<Item> = costs
                    .iter()
                    .enumerate()
                    .map(|(index, &cost)| Item { fail: *poisoned && index == 0, ..Item::new(caller, index, cost) })
                    .collect();
                let b = b.clone();
                tokio::spawn(async move { submit(&b, items, None).await })
            })
            .collect();
        for (caller, call) in calls.into_iter().enumerate() {
            let (costs, poisoned) = &w.callers[caller];
            match call.await.map_err(|e| TestCaseError::fail(e.to_string()))? {
                Ok(out) => {
                    prop_assert!(!poisoned, "a poisoned request succeeded");
                    let want: Vec<(usize, usize)> = (0..costs.len()).map(|i| (caller, i)).collect();
                    prop_assert_eq!(out, want, "caller {} got someone else's results or the wrong order", caller);
                }
                Err(e) => {
                    prop_assert!(*poisoned, "caller {} failed for someone else's input: {}", caller, e);
                    prop_assert_eq!(e, EmbedError::Backend("injected failure".into()));
                }
            }
        }
        let min_fill_percent = BatchConfig::default().min_fill_percent;
        let budget =
            Budget { max_items: w.max_batch_size, max_tokens: w.max_batch_tokens, padded: w.padded, min_fill_percent };
        let batches = fake.batches();
        let mut computed = HashSet::new();
        for batch in &batches {
            prop_assert!(!batch.is_empty() && batch.len() <= w.max_batch_size);
            let retry = batch.iter().all(|i| i.caller == batch[0].caller);
            if batch.len() > 1 && !retry {
                let cost = budget.cost(batch.iter().map(|i| i.cost));
                prop_assert!(cost <= w.max_batch_tokens, "token budget broken");
                if w.padded {
                    let real: usize = batch.iter().map(|i| i.cost).sum();
                    prop_assert!(real * 100 >= cost * min_fill_percent, "batch padded below the fill ratio");
                }
            }
            if !batch.iter().any(|i| i.fail) {
                for item in batch {
                    prop_assert!(computed.insert((item.caller, item.index)), "item computed twice");
                }
            }
        }
        // Every item of a good caller was computed successfully exactly once.
        for (caller, (costs, poisoned)) in w.callers.iter().enumerate() {
            if !poisoned {
                for index in 0..costs.len() {
                    prop_assert!(computed.contains(&(caller, index)), "item lost");
                }
            }
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_caller_gets_exactly_its_own_results_in_order(w in workload()) {
        run(&w)?;
    }
}

#[test]
fn the_fake_really_fails_poisoned_batches() {
    // Guards the property above against a fake that never fails.
    let w = Workload {
        callers: vec![(vec![3, 4], true)],
        max_batch_size: 4,
        max_batch_tokens: 100,
        padded: true,
        delay_ms: 0,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let fake = Arc::new(Fake::default());
    let out = runtime.block_on(async {
        let b = batcher(BatchConfig::default(), &fake, w.padded);
        submit(&b, vec![Item { fail: true, ..Item::new(0, 0, 3) }], None).await
    });
    assert!(out.is_err());
    run(&w).expect("property holds for a poisoned caller");
}
