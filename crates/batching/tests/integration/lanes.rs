//! The scheduler on a fake model: the order items are served in across lanes, tenants and
//! requests; a query behind a deep bulk queue; bulk's minimum share under a flood of queries;
//! and admission refusing work that could not meet its deadline before any of it is computed.

use std::time::{Duration, Instant};

use aki_batching::{BatchConfig, DynamicBatcher};
use aki_core::{Batcher, EmbedError, Lane, RequestContext, Result, Tenant};

use crate::fake::{Fake, Item, batcher};

/// Callers from this number up are bulk in these tests, so a batch's lane shows in its items.
const BULK: usize = 1000;

type Queue = DynamicBatcher<Item, (usize, usize)>;

fn config(max_batch_size: usize, bulk_batch_tokens: usize) -> BatchConfig {
    BatchConfig { max_batch_size, bulk_batch_tokens, queue_capacity: 20_000, ..BatchConfig::default() }
}

/// `n` items of `cost` tokens from `caller`.
fn items(caller: usize, n: usize, cost: usize) -> Vec<Item> {
    (0..n).map(|index| Item::new(caller, index, cost)).collect()
}

async fn send(b: &Queue, items: Vec<Item>, lane: Lane, tenant: &Tenant, deadline: Option<Instant>) -> Result<()> {
    let context = RequestContext { deadline, lane, tenant: tenant.clone(), requester: None };
    b.submit(items, context).await.map(drop)
}

/// Starts a submission of a stream's (`requester`) on its own task.
fn spawn_on_stream(b: &Queue, items: Vec<Item>, requester: u64) -> tokio::task::JoinHandle<Result<()>> {
    let b = b.clone();
    let context = RequestContext { lane: Lane::Bulk, requester: Some(requester), ..RequestContext::default() };
    tokio::spawn(async move { b.submit(items, context).await.map(drop) })
}

/// Starts a submission on its own task.
fn spawn(b: &Queue, items: Vec<Item>, lane: Lane, tenant: &Tenant) -> tokio::task::JoinHandle<Result<Instant>> {
    let (b, tenant) = (b.clone(), tenant.clone());
    tokio::spawn(async move { send(&b, items, lane, &tenant, None).await.map(|()| Instant::now()) })
}

/// Waits (up to 5 s) until the fake has started `calls` model calls.
async fn calls_started(fake: &Fake, calls: usize) {
    for _ in 0..500 {
        if fake.batches().len() >= calls {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("the fake never started {calls} calls");
}

/// The callers of the items served, in order, after the first (blocking) call.
fn served_after_first(fake: &Fake) -> Vec<usize> {
    fake.batches().into_iter().skip(1).flatten().map(|i| i.caller).collect()
}

#[tokio::test]
async fn tenants_alternate_by_weight_and_a_tenants_smaller_request_goes_first() {
    let fake = Fake::slow(Duration::from_millis(20));
    // One item per call, so the calls show the order exactly.
    let b = batcher(config(1, 2048), &fake, false);
    let (a, c) = (Tenant::new("a", 2), Tenant::new("c", 1));
    let blocker = spawn(&b, items(BULK, 1, 1), Lane::Bulk, &Tenant::default());
    calls_started(&fake, 1).await;
    // While the blocker runs: `a` (weight 2) queues a large and then a small request, `c` one.
    let large_a = spawn(&b, items(BULK + 1, 3, 1), Lane::Bulk, &a);
    tokio::time::sleep(Duration::from_millis(2)).await;
    let small_a = spawn(&b, items(BULK + 2, 1, 1), Lane::Bulk, &a);
    tokio::time::sleep(Duration::from_millis(2)).await;
    let only_c = spawn(&b, items(BULK + 3, 3, 1), Lane::Bulk, &c);
    for call in [blocker, large_a, small_a, only_c] {
        call.await.expect("joins").expect("served");
    }
    // `a` gets two items for each of `c`'s; its small request before its large one.
    let (large, small, other) = (BULK + 1, BULK + 2, BULK + 3);
    assert_eq!(served_after_first(&fake), vec![small, other, large, large, other, large, other]);
}

#[tokio::test]
async fn a_larger_request_that_has_waited_goes_before_a_fresh_smaller_one() {
    let fake = Fake::slow(Duration::from_millis(800));
    let b = batcher(config(1, 2048), &fake, false);
    let tenant = Tenant::default();
    let blocker = spawn(&b, items(BULK, 1, 1), Lane::Bulk, &tenant);
    calls_started(&fake, 1).await;
    // A 16-token text waits through the blocker's call; a 4-token one arrives at its end. Their
    // sizes alone would put the small one first; the wait (800 ms against 40) outweighs them.
    let large = spawn(&b, items(BULK + 1, 1, 16), Lane::Bulk, &tenant);
    tokio::time::sleep(Duration::from_millis(760)).await;
    let small = spawn(&b, items(BULK + 2, 1, 4), Lane::Bulk, &tenant);
    for call in [blocker, large, small] {
        call.await.expect("joins").expect("served");
    }
    assert_eq!(served_after_first(&fake), vec![BULK + 1, BULK + 2]);
}

#[tokio::test]
async fn a_query_behind_ten_thousand_bulk_items_is_in_the_next_call() {
    let fake = Fake::slow(Duration::from_millis(40));
    let b = batcher(config(32, 64), &fake, false);
    let indexing = spawn(&b, items(BULK, 10_000, 8), Lane::Bulk, &Tenant::default());
    calls_started(&fake, 1).await;
    let asked = Instant::now();
    send(&b, items(1, 1, 8), Lane::Interactive, &Tenant::default(), None).await.expect("served");
    let waited = asked.elapsed();
    let calls = fake.batches();
    let query_call = calls.iter().position(|c| c.iter().any(|i| i.caller == 1)).expect("the query ran");
    assert_eq!(query_call, 1, "the query ran in call {query_call}, not the one after the running bulk call");
    assert_eq!(calls[0].len(), 8, "a bulk call holds bulk_batch_tokens (64) of 8-token items");
    assert!(waited < Duration::from_millis(400), "the query waited {waited:?}");
    indexing.abort();
}

#[tokio::test]
async fn two_tenants_bulk_jobs_progress_at_the_same_rate_and_a_small_one_sent_later_finishes_first() {
    let fake = Fake::slow(Duration::from_millis(2));
    let b = batcher(config(32, 32), &fake, false);
    let (a, c) = (Tenant::new("a", 1), Tenant::new("c", 1));
    let job_a = spawn(&b, items(BULK + 1, 400, 8), Lane::Bulk, &a);
    let job_c = spawn(&b, items(BULK + 2, 400, 8), Lane::Bulk, &c);
    calls_started(&fake, 10).await;
    let small = spawn(&b, items(BULK + 3, 8, 8), Lane::Bulk, &a);
    let small_done = small.await.expect("joins").expect("served");
    let (a_done, c_done) = (job_a.await.expect("joins").expect("served"), job_c.await.expect("joins").expect("served"));
    assert!(small_done < a_done && small_done < c_done, "the small request finished after a large one");
    // Over the first half of the calls both jobs had work: each got half the items, within 10%.
    let calls = fake.batches();
    let half: Vec<Item> = calls[..calls.len() / 2].iter().flatten().copied().collect();
    let count = |caller| half.iter().filter(|i| i.caller == caller).count() as f64;
    let (from_a, from_c) = (count(BULK + 1), count(BULK + 2));
    assert!((from_a - from_c).abs() <= 0.1 * from_a.max(from_c), "a got {from_a} items, c {from_c}");
}

#[tokio::test]
async fn bulk_keeps_its_minimum_share_under_a_flood_of_queries() {
    let fake = Fake::slow(Duration::from_millis(3));
    let b = batcher(BatchConfig { bulk_share_percent: 25, ..config(1, 8) }, &fake, false);
    let tenant = Tenant::default();
    let indexing = spawn(&b, items(BULK, 200, 8), Lane::Bulk, &tenant);
    let queries: Vec<_> = (0..300).map(|q| spawn(&b, items(q, 1, 8), Lane::Interactive, &tenant)).collect();
    for query in queries {
        query.await.expect("joins").expect("served");
    }
    // While queries were queued, about a quarter of the calls (each the same length) were bulk.
    let calls = fake.batches();
    let last_query = calls.iter().rposition(|c| c[0].caller < BULK).expect("queries ran");
    let bulk = calls[..last_query].iter().filter(|c| c[0].caller >= BULK).count() as f64;
    let share = bulk / last_query as f64;
    assert!((0.18..=0.35).contains(&share), "bulk had {share:.2} of the calls while queries waited");
    indexing.abort();
}

#[tokio::test]
async fn work_that_cannot_meet_its_deadline_is_refused_before_any_of_it_runs() {
    let fake = Fake::slow(Duration::from_millis(50));
    let b = batcher(config(32, 256), &fake, false);
    let tenant = Tenant::default();
    // One call measures the bulk rate: 256 tokens in about 50 ms.
    send(&b, items(BULK, 32, 8), Lane::Bulk, &tenant, None).await.expect("served");
    // About 2 s of bulk work queued, then a bulk request that must be done within 200 ms.
    let indexing = spawn(&b, items(BULK + 1, 1280, 8), Lane::Bulk, &tenant);
    calls_started(&fake, 2).await;
    let deadline = Instant::now() + Duration::from_millis(200);
    let refused = send(&b, items(BULK + 2, 8, 8), Lane::Bulk, &tenant, Some(deadline)).await.expect_err("refused");
    let EmbedError::Busy { retry_after, .. } = refused else { panic!("not busy: {refused:?}") };
    assert!(retry_after >= Duration::from_secs(1), "{retry_after:?}");
    assert!(!fake.items_seen().iter().any(|i| i.caller == BULK + 2), "the refused request was computed");
    // A query is still taken: the interactive lane has nothing ahead of it.
    send(&b, items(1, 1, 8), Lane::Interactive, &tenant, Some(Instant::now() + Duration::from_secs(2)))
        .await
        .expect("a query is admitted");
    indexing.abort();
}

#[tokio::test]
async fn a_streams_requests_queue_as_one_request_of_their_tenant() {
    let fake = Fake::slow(Duration::from_millis(20));
    let b = batcher(config(1, 2048), &fake, false);
    let tenant = Tenant::default();
    let blocker = spawn(&b, items(BULK, 1, 1), Lane::Bulk, &tenant);
    calls_started(&fake, 1).await;
    // Three one-item messages of one stream (15 tokens together), then a two-item request (10).
    let stream: Vec<_> = (0..3).map(|_| spawn_on_stream(&b, items(BULK + 1, 1, 5), 7)).collect();
    tokio::time::sleep(Duration::from_millis(2)).await;
    let request = spawn(&b, items(BULK + 2, 2, 5), Lane::Bulk, &tenant);
    blocker.await.expect("joins").expect("served");
    request.await.expect("joins").expect("served");
    for message in stream {
        message.await.expect("joins").expect("served");
    }
    // The smaller request goes first: the stream's messages are not three small requests.
    let (one, other) = (BULK + 1, BULK + 2);
    assert_eq!(served_after_first(&fake), vec![other, other, one, one, one]);
}

#[tokio::test]
async fn on_a_padded_backend_too_a_query_runs_in_the_call_after_the_bulk_one() {
    let fake = Fake::slow(Duration::from_millis(40));
    let b = batcher(config(32, 64), &fake, true);
    let indexing = spawn(&b, items(BULK, 2_000, 8), Lane::Bulk, &Tenant::default());
    calls_started(&fake, 1).await;
    send(&b, items(1, 1, 8), Lane::Interactive, &Tenant::default(), None).await.expect("served");
    let calls = fake.batches();
    assert_eq!(calls.iter().position(|c| c.iter().any(|i| i.caller == 1)), Some(1));
    // Padded cost is longest x items: 8 items of 8 tokens fill the 64-token bulk budget.
    assert_eq!(calls[0].len(), 8);
    indexing.abort();
}

/// Counts the tokens the batcher reports as computed and discarded.
#[derive(Default)]
struct Wasted(std::sync::atomic::AtomicUsize);

impl aki_batching::BatchObserver for Wasted {
    fn wasted(&self, tokens: usize) {
        self.0.fetch_add(tokens, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn tokens_computed_for_a_caller_that_went_away_are_counted_as_wasted() {
    let fake = Fake::slow(Duration::from_millis(30));
    let wasted = std::sync::Arc::new(Wasted::default());
    let costing = aki_batching::Costing { cost: |i: &Item| i.cost, padded: false };
    let handler = std::sync::Arc::clone(&fake) as std::sync::Arc<dyn aki_batching::BatchHandler<_, _>>;
    let b = DynamicBatcher::new(config(32, 64), costing, handler, std::sync::Arc::clone(&wasted) as _);
    // A served request wastes nothing.
    send(&b, items(BULK, 8, 8), Lane::Bulk, &Tenant::default(), None).await.expect("served");
    assert_eq!(wasted.0.load(std::sync::atomic::Ordering::SeqCst), 0);
    // A caller that goes away after two of its five calls: what was computed for it is wasted,
    // and its queued items are never computed.
    let gone = spawn(&b, items(BULK + 1, 40, 8), Lane::Bulk, &Tenant::default());
    calls_started(&fake, 3).await;
    gone.abort();
    tokio::time::sleep(Duration::from_millis(120)).await;
    let counted = wasted.0.load(std::sync::atomic::Ordering::SeqCst);
    let computed: usize = fake.items_seen().iter().filter(|i| i.caller == BULK + 1).map(|i| i.cost).sum();
    assert!(computed < 40 * 8, "the abandoned items were all computed");
    assert_eq!(counted, computed, "every computed token of the abandoned request is counted");
}
