//! Memory: loading the real model ten times through the store keeps one copy in memory.
//!
//! A test binary of its own: the resident set is per process, so no other test may run
//! beside this one while it measures.

use std::sync::Arc;

use aki_backend_candle::{CandleBackend, CandleConfig};
use aki_cache::{ModelLoader, ModelStoreConfig, MokaModelStore};
use aki_core::{EmbedError, LoadedModel, ModelStore, Result, paths};
use async_trait::async_trait;

struct CandleLoader;

#[async_trait]
impl ModelLoader for CandleLoader {
    async fn load(&self, model_id: &str) -> Result<(LoadedModel, u64)> {
        let config = CandleConfig { device: "cpu".into(), ..CandleConfig::for_model(model_id) };
        let backend = tokio::task::spawn_blocking(move || CandleBackend::load(&config))
            .await
            .map_err(|e| EmbedError::Internal(e.to_string()))??;
        let bytes = backend.weight_bytes();
        Ok((Arc::new(backend.into_pipeline()), bytes))
    }
}

/// Resident set size of this process, from /proc.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line");
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_loads_of_one_model_cost_its_size_once() {
    let dir = paths::installed_model_dir(paths::DEFAULT_MODEL);
    assert!(
        dir.join("model.safetensors").is_file(),
        "model missing in {}: run `cargo xtask fetch-model`",
        dir.display()
    );
    let id = dir.to_string_lossy().into_owned();
    let store = Arc::new(MokaModelStore::new(
        ModelStoreConfig { default_model: id.clone(), ..ModelStoreConfig::default() },
        Arc::new(CandleLoader),
    ));
    let before = rss_bytes();
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let (store, id) = (Arc::clone(&store), id.clone());
            tokio::spawn(async move { store.get_or_load(&id).await })
        })
        .collect();
    for call in calls {
        call.await.expect("task").expect("loads");
    }
    let grown = rss_bytes().saturating_sub(before);
    let weights = store.stats().models[0].1;
    assert_eq!(store.stats().loads, 1);
    // Generous bound: one copy of the weights plus tokenizer and runtime overhead, far below
    // the ten copies a store without sharing would hold.
    assert!(grown < 2 * weights, "resident set grew {grown} bytes for a {weights}-byte model");
    eprintln!(
        "resident set grew by {:.1} MiB for a {:.1} MiB model",
        grown as f64 / 1048576.0,
        weights as f64 / 1048576.0
    );
}
