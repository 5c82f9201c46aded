//! Shared helpers of aki-embed's benchmarks: the corpora in `benches/data/` (copied from the
//! project's benchmark set) and loading the real model.

use std::sync::Arc;

use aki_backend_candle::{CandleBackend, CandleConfig};
use aki_batching::{BatchConfig, BatchObserver, BatchingProvider};
use aki_core::{ModelPipeline, paths};

/// The short corpus: 1024 sentences of about 14 tokens.
pub fn short_corpus() -> Vec<String> {
    corpus(include_str!("data/short_1024.txt"))
}

/// The medium corpus: 256 passages of about 150 to 200 tokens.
pub fn medium_corpus() -> Vec<String> {
    corpus(include_str!("data/medium_256.txt"))
}

fn corpus(text: &str) -> Vec<String> {
    text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()
}

/// Loads the installed default model on the CPU: its pipeline, the backend unbatched and
/// uncached as its inference side. The servers' variables `AKI_BACKEND__CPU_ISA` and
/// `AKI_BACKEND__DTYPE` cap the kernels' instruction set and set the precision, as they do for
/// `aki-rest`, so one machine measures every path.
///
/// # Panics
/// When the model is not installed (`cargo xtask fetch-model` installs it).
pub fn real_model() -> Arc<ModelPipeline> {
    let dir = paths::installed_model_dir(paths::DEFAULT_MODEL);
    let defaults = CandleConfig::for_model(dir.to_string_lossy());
    let config = CandleConfig {
        device: "cpu".into(),
        cpu_isa: std::env::var("AKI_BACKEND__CPU_ISA").unwrap_or(defaults.cpu_isa.clone()),
        dtype: std::env::var("AKI_BACKEND__DTYPE").ok().or(defaults.dtype.clone()),
        ..defaults
    };
    match CandleBackend::load(&config) {
        Ok(backend) => Arc::new(backend.into_pipeline()),
        Err(e) => panic!("{e} (run `cargo xtask fetch-model`)"),
    }
}

/// `model` with its inference side behind a dynamic batcher of `config`, reporting to
/// `observer`; must be called inside a tokio runtime.
pub fn batched(model: &ModelPipeline, config: &BatchConfig, observer: Arc<dyn BatchObserver>) -> Arc<ModelPipeline> {
    let padded = model.info().is_padded;
    let batcher = BatchingProvider::dynamic_batcher(Arc::clone(model.inference()), padded, config, observer);
    Arc::new(model.with_inference(Arc::new(BatchingProvider::new(Arc::new(batcher)))))
}

/// The `q`-quantile (0..=1) of sorted `values` by nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
