//! Criterion: the batcher's own cost per item, with a batch function that does nothing.
//!
//! `cargo bench -p aki-benches --bench batcher_overhead`

use std::sync::Arc;

use aki_batching::{BatchConfig, BatchHandler, Costing, DynamicBatcher, NoObserver};
use aki_core::{Batcher, RequestContext, Result};
use async_trait::async_trait;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

struct Noop;

#[async_trait]
impl BatchHandler<u32, u32> for Noop {
    async fn run(&self, items: Vec<u32>) -> Result<Vec<u32>> {
        Ok(items)
    }
}

fn overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let batcher = runtime.block_on(async {
        DynamicBatcher::new(
            BatchConfig::default(),
            Costing { cost: |_: &u32| 16, padded: true },
            Arc::new(Noop) as Arc<dyn BatchHandler<u32, u32>>,
            Arc::new(NoObserver),
        )
    });
    let mut group = c.benchmark_group("batcher_overhead");
    for concurrent in [1usize, 32] {
        group.throughput(Throughput::Elements(concurrent as u64));
        group.bench_with_input(BenchmarkId::new("single_item_submits", concurrent), &concurrent, |b, &n| {
            b.to_async(&runtime).iter(|| {
                let batcher = batcher.clone();
                async move {
                    let calls: Vec<_> = (0..n as u32)
                        .map(|i| {
                            let batcher = batcher.clone();
                            tokio::spawn(async move { batcher.submit(vec![i], RequestContext::default()).await })
                        })
                        .collect();
                    for call in calls {
                        call.await.expect("task").expect("result");
                    }
                }
            });
        });
    }
    group.throughput(Throughput::Elements(32));
    group.bench_function("one_submit_of_32_items", |b| {
        b.to_async(&runtime).iter(|| batcher.submit((0..32).collect(), RequestContext::default()));
    });
    group.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
