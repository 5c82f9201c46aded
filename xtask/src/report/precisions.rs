//! The report's section on lower precisions: each of our runs and each ONNX Runtime run on the
//! short corpus, one sentence and 32 at a time, beside what its precision cost in cosine to
//! the reference fixtures.

use std::fmt::Write as _;

use aki_bench_report::ThroughputRun;

use super::figures::Rendered;
use super::markdown::triple;

/// The runs the section compares, in order: the name in the report, what it is, and the run
/// whose speed it is set against.
const RUNS: [(&str, &str, &str); 8] = [
    ("f32", "aki f32", "f32"),
    ("bf16", "aki bf16 (AVX-512 BF16)", "f32"),
    ("int8", "aki int8 (W8A8)", "f32"),
    ("avx2_f32", "aki f32, AVX2", "avx2_f32"),
    ("avx2_f16", "aki f16 weights, AVX2", "avx2_f32"),
    ("avx2_int8", "aki int8 (W8A8), AVX2", "avx2_f32"),
    ("onnxruntime", "ONNX Runtime f32", "onnxruntime"),
    ("onnxruntime-int8", "ONNX Runtime int8", "onnxruntime"),
];

impl Rendered<'_> {
    /// Ours and the peer's precisions side by side.
    pub(super) fn precisions(&self, md: &mut String) {
        let run = |name: &str| self.ours(name).or_else(|| self.peer(name));
        if run("int8").is_none() && run("onnxruntime-int8").is_none() {
            return;
        }
        let _ = writeln!(
            md,
            "## Precisions\n\nThe short corpus, one sentence per call (the median call, tokenization included) and 32 \
             per call, in each precision: ours at the CPU's level and capped at AVX2 (`--isa avx2`, what AVX2-only \
             CPUs run), and ONNX Runtime's f32 and dynamic int8 (`scripts/peer_onnxruntime.py --int8`: the same \
             optimised export through `onnxruntime.quantization.quantize_dynamic`, int8 weights per output \
             channel, `reduce_range`; ONNX Runtime cannot be capped). Cosine: to the reference on the 48 fixtures, \
             worst and mean. `/ base`: batch 32 against the f32 run of the same level (ONNX Runtime int8 against \
             its f32).\n\n\
             | run | engine | cosine min / mean | 1 sentence, ms | batch 32, sentences/s | / base |\n\
             |---|---|---:|---:|---:|---:|"
        );
        for (name, label, base) in RUNS {
            let Some(r) = run(name) else {
                continue;
            };
            let cosine = r.fixture_cosine.map_or("-".into(), |c| format!("{:.4} / {:.4}", c.min, c.mean));
            let one = r.row("short", 1).and_then(|row| row.call_p50_ms).map_or("-".into(), |ms| format!("{ms:.2}"));
            let rate = |r: Option<&ThroughputRun>| Self::rate(r, "short", 32);
            let ratio = rate(Some(r)).zip(rate(run(base))).map_or("-".into(), |(a, b)| format!("{:.2}x", a.0 / b.0));
            let batch = rate(Some(r)).map_or("-".into(), triple);
            let _ = writeln!(md, "| {label} | {} | {cosine} | {one} | {batch} | {ratio} |", r.engine);
        }
        md.push('\n');
    }
}
