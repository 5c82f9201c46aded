//! The report as rendering sees it: [`Rendered`], a [`Report`] with what the report does not
//! hold (the model's linear-layer work per token, the GPU figures kept by hand), and the figures
//! the targets, the tables and the charts share.

use aki_bench_report::{Report, Spread, ThroughputRun};

/// A report ready to render.
pub struct Rendered<'a> {
    pub(super) report: &'a Report,
    /// The model's linear-layer work per token ([`linear_flops_per_token`]), when known.
    pub(super) flops_per_token: Option<f64>,
    /// The GPU figures kept in `benches/results/gpu-h100.md` (no GPU where the bench runs).
    pub(super) gpu: Option<String>,
}

impl<'a> Rendered<'a> {
    pub fn new(report: &'a Report, flops_per_token: Option<f64>, gpu: Option<String>) -> Self {
        Self { report, flops_per_token, gpu }
    }

    pub(super) fn ours(&self, run: &str) -> Option<&ThroughputRun> {
        self.report.throughput.get(run)
    }

    pub(super) fn peer(&self, name: &str) -> Option<&ThroughputRun> {
        self.report.peers.get(name)
    }

    /// (median, lowest, highest) sentences/s of `run` for `corpus` at `batch`.
    pub(super) fn rate(run: Option<&ThroughputRun>, corpus: &str, batch: usize) -> Option<Spread> {
        run?.rate(corpus, batch)
    }

    /// Sentences/s a measured rate allows on the short corpus (linear layers only), with the
    /// rate used.
    pub(super) fn ceiling(&self, rate: Ceiling) -> Option<(f64, f64)> {
        let ours = self.ours("f32")?;
        let sgemm = match rate {
            Ceiling::Sgemm => {
                self.report.peers.values().chain([ours]).filter_map(|r| r.sgemm_gflops).fold(0.0, f64::max)
            }
            Ceiling::Bf16 => self.ours("bf16")?.bf16_gflops?,
            Ceiling::Avx2Fma => self.ours("avx2_f32")?.avx2_fma_gflops?,
        };
        let short = ours.corpora.get("short")?;
        let flops = self.flops_per_token? * short.tokens as f64 / short.texts as f64;
        (sgemm > 0.0).then(|| (sgemm * 1e9 / flops, sgemm))
    }
}

/// The measured rate a ceiling is computed from.
#[derive(Clone, Copy)]
pub(super) enum Ceiling {
    /// The machine's best f32 matrix multiply (ours or a peer's library).
    Sgemm,
    /// The bf16 dot-product rate (`vdpbf16ps` from registers).
    Bf16,
    /// The AVX2 f32 multiply-add rate (`vfmadd231ps` from registers): the kernels capped at AVX2.
    Avx2Fma,
}

impl Ceiling {
    /// What the rate is, for the report.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Sgemm => "sgemm",
            Self::Bf16 => "bf16 dot products",
            Self::Avx2Fma => "AVX2 multiply-adds",
        }
    }
}

/// Linear-layer work per token of a BERT encoder, from its `config.json`:
/// `2 * layers * (4 h^2 + 2 h i)` FLOPs.
pub fn linear_flops_per_token(config: &serde_json::Value) -> Option<f64> {
    let get = |key: &str| config[key].as_f64();
    let (h, i, layers) = (get("hidden_size")?, get("intermediate_size")?, get("num_hidden_layers")?);
    Some(2.0 * layers * (4.0 * h * h + 2.0 * h * i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_work_per_token_is_read_from_a_bert_config() {
        let config = serde_json::json!({"hidden_size": 384, "intermediate_size": 1536, "num_hidden_layers": 6});
        assert_eq!(linear_flops_per_token(&config), Some(2.0 * 6.0 * (4.0 * 384.0 * 384.0 + 2.0 * 384.0 * 1536.0)));
        assert_eq!(linear_flops_per_token(&serde_json::json!({"hidden_size": 384})), None);
    }
}
