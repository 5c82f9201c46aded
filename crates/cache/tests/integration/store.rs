//! `MokaModelStore`: one load per id however many callers, failures not cached, bounds,
//! pinning, and only configured ids loadable.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use aki_cache::{ModelStoreConfig, MokaModelStore};
use aki_core::{EmbedError, ErrorKind, ModelStore};

use crate::fakes::CountingLoader;

const MIB: u64 = 1 << 20;

fn config(models: &[&str]) -> ModelStoreConfig {
    ModelStoreConfig {
        default_model: "default".into(),
        models: models.iter().map(|m| (*m).to_string()).collect(),
        ..ModelStoreConfig::default()
    }
}

/// The error of a load that must fail.
fn refused(result: aki_core::Result<aki_core::LoadedModel>) -> EmbedError {
    match result {
        Ok(model) => panic!("loaded {} instead of failing", model.info().model_id),
        Err(e) => e,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_callers_share_one_load_and_one_instance() {
    let loader = CountingLoader::new(MIB);
    let store = Arc::new(MokaModelStore::new(config(&["other"]), loader.clone()));
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.get_or_load("other").await })
        })
        .collect();
    let mut models = Vec::new();
    for call in calls {
        models.push(call.await.expect("task").expect("loads"));
    }
    assert_eq!(loader.calls(), 1, "loaded exactly once");
    assert!(models.iter().all(|m| Arc::ptr_eq(m, &models[0])), "every caller got the same instance");
    let again = store.get_or_load("other").await.expect("cached");
    assert!(Arc::ptr_eq(&again, &models[0]));
    let stats = store.stats();
    assert_eq!((stats.loads, stats.models.clone()), (1, vec![("other".to_string(), MIB)]));
    assert_eq!(stats.hits + stats.misses, 11);
    assert!(stats.hits >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_load_reaches_every_waiter_and_is_retried_next_time() {
    let loader = CountingLoader::new(MIB);
    loader.failures_left.store(1, Ordering::SeqCst);
    let store = Arc::new(MokaModelStore::new(config(&[]), loader.clone()));
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.get_or_load("default").await })
        })
        .collect();
    for call in calls {
        let err = refused(call.await.expect("task"));
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        let text = err.to_string();
        assert!(
            text.contains("`default` could not be loaded") && !text.contains("injected"),
            "cause kept in the log: {text}"
        );
    }
    assert_eq!(loader.calls(), 1, "waiters shared the failing load");
    store.get_or_load("default").await.expect("the next call loads again");
    assert_eq!(loader.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_stops_waiting_leaves_the_load_running_for_the_next() {
    let loader = CountingLoader::new(MIB);
    loader.delay_ms.store(300, Ordering::SeqCst);
    let store = Arc::new(MokaModelStore::new(config(&["slow"]), loader.clone()));
    let impatient = tokio::time::timeout(std::time::Duration::from_millis(50), store.get_or_load("slow")).await;
    assert!(impatient.is_err(), "the first caller gave up");
    let patient = store.get_or_load("slow").await.expect("the same load, still running, answers");
    assert_eq!(patient.info().model_id, "slow");
    assert_eq!(loader.calls(), 1, "one load, not one per caller");
}

#[tokio::test]
async fn a_model_over_the_weight_bound_is_refused_and_not_loaded_again() {
    let loader = CountingLoader::new(300 * MIB);
    let store =
        MokaModelStore::new(ModelStoreConfig { max_weight_bytes: 250 * MIB, ..config(&["big"]) }, loader.clone());
    for _ in 0..3 {
        let err = refused(store.get_or_load("big").await);
        assert!(err.to_string().contains("300 MiB") && err.to_string().contains("models.max_weight_bytes"), "{err}");
    }
    assert_eq!(loader.calls(), 1, "refused once by its size, then without loading");
    store.get_or_load("default").await.expect("the pinned default is not bounded");
}

#[tokio::test]
async fn weight_bound_evicts_least_recently_used_but_never_the_pinned_default() {
    let loader = CountingLoader::new(100 * MIB);
    let store = MokaModelStore::new(
        ModelStoreConfig { max_weight_bytes: 250 * MIB, ..config(&["a", "b", "c"]) },
        loader.clone(),
    );
    store.preload(&["default".into(), "a".into(), "b".into()]).await.expect("preload");
    store.run_pending_tasks().await;
    assert_eq!(store.stats().evictions, 0, "default (pinned) + a + b: 200 MiB evictable, within 250");
    store.get_or_load("c").await.expect("loads c");
    store.run_pending_tasks().await;
    let stats = store.stats();
    let loaded: Vec<&str> = stats.models.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(stats.evictions, 1);
    assert_eq!(loaded, vec!["b", "c", "default"], "a was the least recently used");
    let unpinned: u64 = stats.models.iter().filter(|(id, _)| id != "default").map(|(_, b)| b).sum();
    assert!(unpinned <= 250 * MIB);
    // Pinned even though the default alone could be evicted under a tighter bound.
    store.get_or_load("a").await.expect("reloads a");
    store.run_pending_tasks().await;
    assert!(store.stats().models.iter().any(|(id, _)| id == "default"));
    assert_eq!(loader.calls(), 5);
}

#[tokio::test]
async fn only_configured_models_are_loadable() {
    let loader = CountingLoader::new(MIB);
    let store = MokaModelStore::new(config(&["org/allowed"]), loader.clone());
    for id in ["org/other", "/etc", "../../secrets", ""] {
        let err = refused(store.get_or_load(id).await);
        assert_eq!(err.kind(), ErrorKind::NotFound, "{id}");
        assert!(err.to_string().contains("default, org/allowed"), "{err}");
    }
    assert_eq!(loader.calls(), 0, "nothing was read for a refused id");
    store.get_or_load("org/allowed").await.expect("allowed");
}

#[tokio::test]
async fn idle_models_are_unloaded_after_time_to_idle() {
    let loader = CountingLoader::new(MIB);
    let store = MokaModelStore::new(ModelStoreConfig { time_to_idle_secs: 1, ..config(&["a"]) }, loader.clone());
    store.preload(&["default".into(), "a".into()]).await.expect("preload");
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    store.run_pending_tasks().await;
    let loaded: Vec<String> = store.stats().models.into_iter().map(|(id, _)| id).collect();
    assert_eq!(loaded, vec!["default".to_string()], "a idled out; the pinned default stays");
}
