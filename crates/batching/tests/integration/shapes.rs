//! Batch shapes, limits, backpressure, deadlines, cancellation, failures and shutdown, observed
//! through a fake backend that records each batch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aki_batching::BatchConfig;
use aki_core::{EmbedError, ErrorKind};

use crate::fake::{Fake, Item, batcher, submit};

fn config(max_batch_size: usize) -> BatchConfig {
    BatchConfig { max_batch_size, ..BatchConfig::default() }
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(30)).await;
}

/// Waits (up to 5 s) until `ready` holds, so tests do not depend on how fast spawned tasks run.
async fn wait_until(what: &str, ready: impl Fn() -> bool) {
    for _ in 0..500 {
        if ready() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn fifty_concurrent_single_requests_make_few_full_batches() {
    let fake = Fake::slow(Duration::from_millis(50));
    let b = batcher(config(8), &fake, true);
    let calls: Vec<_> = (0..50)
        .map(|caller| {
            let b = b.clone();
            tokio::spawn(async move { submit(&b, vec![Item::new(caller, 0, 10)], None).await })
        })
        .collect();
    for (caller, call) in calls.into_iter().enumerate() {
        assert_eq!(call.await.expect("task").expect("result"), vec![(caller, 0)]);
    }
    let batches = fake.batches();
    assert!(batches.iter().all(|b| b.len() <= 8), "a batch over max_batch_size");
    // 50 items at 8 per batch is 7 batches; the first may leave alone before the rest arrive.
    assert!(batches.len() <= 8, "{} batches for 50 requests", batches.len());
    assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 50, "each item computed once");
}

#[tokio::test]
async fn a_lone_request_at_idle_is_dispatched_without_waiting() {
    let fake = Fake::slow(Duration::ZERO);
    let b = batcher(BatchConfig { max_wait_ms: 0, ..config(32) }, &fake, true);
    let out = tokio::time::timeout(Duration::from_secs(2), submit(&b, vec![Item::new(1, 0, 5)], None)).await;
    assert_eq!(out.expect("no timer held it").expect("result"), vec![(1, 0)]);

    // With a wait window, the same lone request is held for a fuller batch...
    let fake = Fake::slow(Duration::ZERO);
    let b = batcher(BatchConfig { max_wait_ms: 60_000, ..config(4) }, &fake, true);
    let lone = tokio::spawn({
        let b = b.clone();
        async move { submit(&b, vec![Item::new(1, 0, 5)], None).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(fake.batches().is_empty(), "held by max_wait");
    // ...until a full batch is queued, which leaves at once.
    let rest = submit(&b, (1..4).map(|i| Item::new(2, i, 5)).collect(), None);
    tokio::time::timeout(Duration::from_secs(2), rest).await.expect("full batch leaves").expect("result");
    assert_eq!(lone.await.expect("task").expect("result"), vec![(1, 0)]);
    assert_eq!(fake.batches().len(), 1);
}

#[tokio::test]
async fn a_full_queue_answers_overloaded_at_once() {
    let fake = Fake::slow(Duration::from_millis(300));
    let b = batcher(BatchConfig { queue_capacity: 4, ..config(1) }, &fake, true);
    let running = tokio::spawn({
        let b = b.clone();
        async move { submit(&b, vec![Item::new(0, 0, 1)], None).await }
    });
    wait_until("the first request runs", || fake.batches().len() == 1).await;
    let queued = tokio::spawn({
        let b = b.clone();
        async move { submit(&b, (0..4).map(|i| Item::new(1, i, 1)).collect(), None).await }
    });
    wait_until("four items are queued", || b.queue_depth() == 4).await;
    let started = Instant::now();
    let err = submit(&b, vec![Item::new(2, 0, 1)], None).await.expect_err("queue full");
    assert_eq!(err.kind(), ErrorKind::Overloaded);
    assert!(started.elapsed() < Duration::from_millis(100), "rejected at once, not after waiting");
    running.await.expect("task").expect("first request served");
    assert_eq!(queued.await.expect("task").expect("queued request served").len(), 4);
    assert_eq!(b.queue_depth(), 0);
}

#[tokio::test]
async fn expired_and_cancelled_requests_never_reach_the_backend() {
    let fake = Fake::slow(Duration::from_millis(150));
    let b = batcher(config(1), &fake, true);
    let busy = tokio::spawn({
        let b = b.clone();
        async move { submit(&b, vec![Item::new(0, 0, 1)], None).await }
    });
    wait_until("the first request runs", || fake.batches().len() == 1).await;
    // Expires while the model is busy.
    let expiring = submit(&b, vec![Item::new(1, 0, 1)], Some(Instant::now() + Duration::from_millis(20)));
    assert_eq!(expiring.await.expect_err("expired"), EmbedError::Timeout);
    // Abandoned: the caller drops its future while the item is queued.
    let abandoned = tokio::time::timeout(Duration::from_millis(20), submit(&b, vec![Item::new(2, 0, 1)], None)).await;
    assert!(abandoned.is_err(), "the caller gave up");
    let kept = submit(&b, vec![Item::new(3, 0, 1)], None).await.expect("served");
    assert_eq!(kept, vec![(3, 0)]);
    busy.await.expect("task").expect("served");
    let callers: Vec<usize> = fake.items_seen().iter().map(|i| i.caller).collect();
    assert_eq!(callers, vec![0, 3], "only live requests were computed");
}

#[tokio::test]
async fn a_failing_or_panicking_batch_fails_only_its_own_requests() {
    let fake = Fake::slow(Duration::from_millis(30));
    let b = batcher(config(1), &fake, true);
    let mut poisoned = Item::new(1, 0, 1);
    poisoned.fail = true;
    let mut panicking = Item::new(2, 0, 1);
    panicking.panic = true;
    let (ok_before, failed, panicked, ok_after) = tokio::join!(
        submit(&b, vec![Item::new(0, 0, 1)], None),
        submit(&b, vec![poisoned], None),
        submit(&b, vec![panicking], None),
        submit(&b, vec![Item::new(3, 0, 1)], None),
    );
    assert_eq!(ok_before.expect("served"), vec![(0, 0)]);
    assert_eq!(failed.expect_err("backend error"), EmbedError::Backend("injected failure".into()));
    assert_eq!(panicked.expect_err("panic").kind(), ErrorKind::Internal);
    assert_eq!(ok_after.expect("the worker survived the panic"), vec![(3, 0)]);
}

#[tokio::test]
async fn a_bad_input_in_a_shared_batch_fails_only_its_own_caller() {
    let fake = Fake::slow(Duration::from_millis(30));
    let b = batcher(config(8), &fake, false);
    // Keep the model busy so the next four callers queue up and share one batch.
    let busy = tokio::spawn({
        let b = b.clone();
        async move { submit(&b, vec![Item::new(9, 0, 1)], None).await }
    });
    wait_until("the first batch runs", || fake.batches().len() == 1).await;
    let mut poisoned = Item::new(1, 1, 1);
    poisoned.fail = true;
    let mut panicking = Item::new(3, 0, 1);
    panicking.panic = true;
    let (good, bad, also_good, panicked) = tokio::join!(
        submit(&b, vec![Item::new(0, 0, 1), Item::new(0, 1, 1)], None),
        submit(&b, vec![Item::new(1, 0, 1), poisoned], None),
        submit(&b, vec![Item::new(2, 0, 1)], None),
        submit(&b, vec![panicking], None),
    );
    busy.await.expect("task").expect("served");
    assert_eq!(good.expect("innocent caller served"), vec![(0, 0), (0, 1)]);
    assert_eq!(also_good.expect("innocent caller served"), vec![(2, 0)]);
    assert_eq!(bad.expect_err("culprit fails"), EmbedError::Backend("injected failure".into()));
    assert_eq!(panicked.expect_err("culprit fails").kind(), ErrorKind::Internal);
    let shared = fake.batches().into_iter().find(|b| b.len() > 1).expect("a shared batch");
    assert!(shared.iter().map(|i| i.caller).collect::<std::collections::HashSet<_>>().len() > 1, "{shared:?}");
}

#[tokio::test]
async fn a_thousand_items_are_split_into_batches_and_reassembled_in_order() {
    let fake = Fake::slow(Duration::ZERO);
    let b = batcher(config(32), &fake, true);
    let items: Vec<Item> = (0..1000).map(|i| Item::new(7, i, 1 + i % 13)).collect();
    let out = submit(&b, items, None).await.expect("served");
    assert_eq!(out, (0..1000).map(|i| (7, i)).collect::<Vec<_>>());
    let batches = fake.batches();
    assert!(batches.len() >= 1000 / 32 && batches.iter().all(|b| b.len() <= 32));
}

#[tokio::test]
async fn shutdown_drains_the_queue_then_refuses_new_work() {
    let fake = Fake::slow(Duration::from_millis(10));
    let b = batcher(config(2), &fake, true);
    let calls: Vec<_> = (0..10)
        .map(|caller| {
            let b = b.clone();
            tokio::spawn(async move { submit(&b, vec![Item::new(caller, 0, 1)], None).await })
        })
        .collect();
    wait_until("all ten are queued or running", || fake.items_seen().len() + b.queue_depth() == 10).await;
    b.shutdown().await;
    assert_eq!(fake.items_seen().len(), 10, "everything queued was computed before shutdown returned");
    for call in calls {
        call.await.expect("task").expect("served");
    }
    let err = submit(&b, vec![Item::new(99, 0, 1)], None).await.expect_err("closed");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
}

#[tokio::test]
async fn observer_sees_every_dispatch_within_limits() {
    use aki_batching::{BatchObserver, BatchShape, Costing, DynamicBatcher};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Record(Mutex<Vec<BatchShape>>, Mutex<usize>);
    impl BatchObserver for Record {
        fn dispatched(&self, shape: &BatchShape) {
            self.0.lock().expect("lock").push(*shape);
        }
        fn completed(&self, _: Duration, ok: bool) {
            assert!(ok);
            *self.1.lock().expect("lock") += 1;
        }
    }
    let fake = Fake::slow(Duration::from_millis(5));
    let record = Arc::new(Record::default());
    let costing = Costing { cost: |i: &Item| i.cost, padded: true };
    let config = BatchConfig { max_batch_tokens: 40, ..config(8) };
    let b = DynamicBatcher::new(config, costing, Arc::clone(&fake) as _, Arc::clone(&record) as _);
    let items: Vec<Item> = (0..40).map(|i| Item::new(0, i, 3 + i % 9)).collect();
    submit(&b, items, None).await.expect("served");
    let shapes = record.0.lock().expect("lock").clone();
    assert_eq!(shapes.iter().map(|s| s.items).sum::<usize>(), 40);
    assert!(shapes.iter().all(|s| s.tokens <= 40 && s.items <= 8), "{shapes:?}");
    assert_eq!(*record.1.lock().expect("lock"), shapes.len());
}

#[tokio::test]
async fn dropping_every_handle_ends_the_worker_and_frees_the_batch_function() {
    let fake = Fake::slow(Duration::ZERO);
    let b = batcher(config(4), &fake, true);
    submit(&b, vec![Item::new(0, 0, 1)], None).await.expect("served");
    let weak = b.downgrade();
    assert!(weak.upgrade().is_some());
    drop(b);
    assert!(weak.upgrade().is_none(), "a weak handle keeps nothing alive");
    for _ in 0..100 {
        if Arc::strong_count(&fake) == 1 {
            return;
        }
        settle().await;
    }
    panic!("the worker still holds the batch function after every handle was dropped");
}
