//! What rendering the report reads and writes: the installed model's `config.json` and the GPU
//! figures kept in `benches/results/gpu-h100.md` in, `benchmarks.json`, `benchmarks.md` and the
//! two charts out.

use std::path::Path;

use aki_bench_report::Report;
use anyhow::Result;

use super::charts::Metric;
use super::figures::{Rendered, linear_flops_per_token};

/// Writes `report` to `out` as `benchmarks.json`, `bench-throughput.svg`, `bench-p95.svg`
/// and `benchmarks.md`.
pub fn write(root: &Path, out: &Path, report: &Report) -> Result<()> {
    std::fs::write(out.join("benchmarks.json"), serde_json::to_string_pretty(report)? + "\n")?;
    render(root, out, report)
}

/// Writes `report` to `out` as `bench-throughput.svg`, `bench-p95.svg` and `benchmarks.md`.
fn render(root: &Path, out: &Path, report: &Report) -> Result<()> {
    let gpu = std::fs::read_to_string(root.join("benches/results/gpu-h100.md")).ok();
    let rendered = Rendered::new(report, model_flops_per_token(), gpu);
    std::fs::write(out.join("bench-throughput.svg"), rendered.chart(Metric::Throughput))?;
    std::fs::write(out.join("bench-p95.svg"), rendered.chart(Metric::P95))?;
    std::fs::write(out.join("benchmarks.md"), rendered.markdown())?;
    Ok(())
}

/// Renders `benchmarks.md` and the charts in `dir` again from its `benchmarks.json`, which it
/// leaves as it is: the machine, commit and date stay the measurement's.
pub fn rerender(root: &Path, dir: &Path) -> Result<()> {
    render(root, dir, &crate::read_json(&dir.join("benchmarks.json"))?)
}

/// The installed default model's linear-layer work per token, if its `config.json` reads.
fn model_flops_per_token() -> Option<f64> {
    let path = aki_core::paths::installed_model_dir(aki_core::paths::DEFAULT_MODEL).join("config.json");
    linear_flops_per_token(&serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?)
}
