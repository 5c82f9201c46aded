//! The settings a CUDA GPU takes where the user set none.

use crate::config::AppConfig;

/// The settings a CUDA GPU gets where the user set none. Measured on a lent H100
/// (docs/benchmarks.md, "GPU"): f16 with 128 texts and 16,384 tokens per call and 2 calls in
/// flight gave the best p95 at 100 and 400 connections, where the CPU-sized defaults left the GPU
/// 55-65% busy; forward passes of 128; and the padding bound measured on the padded path
/// (docs/benchmarks.md, "Padding": at 16,384 tokens a call, a 70% fill bound wasted 15.0% and
/// 17.9% of the computed tokens on padding in two runs, against 27.7% and 20.3% at 50%, and
/// ran faster in both). Bulk-lane calls of 8,192 tokens: the medium row (2,157 texts/s in
/// calls of 8,192 tokens) puts such a call of medium passages near 20 ms, half the ordinary
/// call, and at that size the GPU still ran 97% busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuDefaults {
    /// `backend.dtype`.
    pub dtype: &'static str,
    /// `backend.max_forward_batch`.
    pub max_forward_batch: usize,
    /// `batching.max_batch_size`.
    pub max_batch_size: usize,
    /// `batching.max_batch_tokens`.
    pub max_batch_tokens: usize,
    /// `batching.max_concurrent_batches`.
    pub max_concurrent_batches: usize,
    /// `batching.min_fill_percent`.
    pub min_fill_percent: usize,
    /// `batching.bulk_batch_tokens`.
    pub bulk_batch_tokens: usize,
}

/// The GPU defaults in force.
pub const GPU_DEFAULTS: GpuDefaults = GpuDefaults {
    dtype: "f16",
    max_forward_batch: 128,
    max_batch_size: 128,
    max_batch_tokens: 16_384,
    max_concurrent_batches: 2,
    min_fill_percent: 70,
    bulk_batch_tokens: 8_192,
};

/// Sets `slot` to `value` unless the user set `key`, noting the key when it does.
fn unless_set<T>(
    key: &'static str,
    slot: &mut T,
    value: T,
    is_set: &dyn Fn(&str) -> bool,
    taken: &mut Vec<&'static str>,
) {
    if !is_set(key) {
        *slot = value;
        taken.push(key);
    }
}

/// Gives every key of [`GPU_DEFAULTS`] that `is_set` says the user left alone its GPU value,
/// noting each in `config.gpu_defaults`.
pub(crate) fn apply_defaults(config: &mut AppConfig, is_set: impl Fn(&str) -> bool) {
    let (gpu, is_set, taken) = (GPU_DEFAULTS, &is_set as &dyn Fn(&str) -> bool, &mut config.gpu_defaults);
    unless_set("backend.dtype", &mut config.backend.dtype, Some(gpu.dtype.into()), is_set, taken);
    unless_set(
        "backend.max_forward_batch",
        &mut config.backend.max_forward_batch,
        gpu.max_forward_batch,
        is_set,
        taken,
    );
    let batching = &mut config.batching;
    unless_set("batching.max_batch_size", &mut batching.max_batch_size, gpu.max_batch_size, is_set, taken);
    unless_set("batching.max_batch_tokens", &mut batching.max_batch_tokens, gpu.max_batch_tokens, is_set, taken);
    let in_flight = gpu.max_concurrent_batches;
    unless_set("batching.max_concurrent_batches", &mut batching.max_concurrent_batches, in_flight, is_set, taken);
    unless_set("batching.min_fill_percent", &mut batching.min_fill_percent, gpu.min_fill_percent, is_set, taken);
    unless_set("batching.bulk_batch_tokens", &mut batching.bulk_batch_tokens, gpu.bulk_batch_tokens, is_set, taken);
}
