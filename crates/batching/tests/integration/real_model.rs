//! The real model through the batcher: the same vectors as without it, and as the reference.

use std::sync::Arc;

use aki_backend_candle::{CandleBackend, CandleConfig};
use aki_batching::{BatchConfig, BatchingProvider, NoObserver};
use aki_core::{EmbedOptions, RequestContext, paths, vector::cosine};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_through_the_batcher_match_the_reference() {
    let dir = paths::installed_model_dir(paths::DEFAULT_MODEL);
    assert!(
        dir.join("model.safetensors").is_file(),
        "model missing in {}: run `cargo xtask fetch-model`",
        dir.display()
    );
    let config = CandleConfig { device: "cpu".into(), ..CandleConfig::for_model(dir.to_string_lossy()) };
    let backend = tokio::task::spawn_blocking(move || CandleBackend::load(&config))
        .await
        .expect("task")
        .expect("loads")
        .into_pipeline();
    let config = BatchConfig::default();
    let padded = backend.info().is_padded;
    let batcher =
        BatchingProvider::dynamic_batcher(Arc::clone(backend.inference()), padded, &config, Arc::new(NoObserver));
    let batching = Arc::new(backend.with_inference(Arc::new(BatchingProvider::new(Arc::new(batcher)))));

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../backend-candle/tests/fixtures/reference.json");
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
    let items = reference["items"].as_array().expect("items");

    // Every fixture as its own concurrent request: mixed lengths end up in shared batches.
    let calls: Vec<_> = items
        .iter()
        .map(|item| {
            let text = item["text"].as_str().expect("text").to_string();
            let batching = Arc::clone(&batching);
            tokio::spawn(
                async move { batching.embed(vec![text], EmbedOptions::default(), RequestContext::default()).await },
            )
        })
        .collect();
    let direct_texts: Vec<String> = items.iter().map(|i| i["text"].as_str().expect("text").to_string()).collect();
    let direct = backend.embed(direct_texts, EmbedOptions::default(), RequestContext::default()).await.expect("direct");
    for ((item, call), direct) in items.iter().zip(calls).zip(&direct.vectors) {
        let out = call.await.expect("task").expect("batched");
        let want: Vec<f32> = item["embedding"]
            .as_array()
            .expect("embedding")
            .iter()
            .map(|x| x.as_f64().expect("number") as f32)
            .collect();
        assert_eq!(out.tokens(), item["tokens"].as_u64().expect("tokens") as usize);
        assert!(cosine(&out.vectors[0], direct) >= 0.9999, "batched differs from direct for {:?}", item["text"]);
        assert!(cosine(&out.vectors[0], &want) >= 0.9999, "batched differs from reference for {:?}", item["text"]);
    }
}
