//! The targets `docs/benchmarks.md` checks, as a table of data ([`TARGETS`]): what each
//! measures, how its figure is read from the report, and the bound it must meet.

use aki_bench_report::{LoadField, load_spread};

use super::figures::{Ceiling, Rendered};

/// How a target's figure is read from the report.
enum Measure {
    /// The median over rounds of one field of a load scenario.
    Load(&'static str, LoadField),
    /// Failed answers (non-2xx and socket errors) over all answers of a scenario, percent.
    ErrorRate(&'static str),
    /// The highest peak resident memory of any scenario, MB.
    PeakRss,
    /// Our throughput run over a peer's, on a corpus at a batch size (a ratio).
    VsPeer { ours: &'static str, peer: &'static str, corpus: &'static str, batch: usize },
    /// One of our throughput runs over another, on a corpus at a batch size (a ratio).
    VsOurs { run: &'static str, base: &'static str, corpus: &'static str, batch: usize },
    /// Our median call for one short sentence over a peer's (a ratio).
    OneSentenceVsPeer { ours: &'static str, peer: &'static str },
    /// Our throughput on the short corpus at a batch size, percent of a compute ceiling.
    CeilingShare { ours: &'static str, batch: usize, rate: Ceiling },
    /// A load scenario's requests/s over a peer's library rate at a batch size (a ratio).
    ServedVsPeer { scenario: &'static str, peer: &'static str, batch: usize },
    /// The p95 of a paced scenario, ms.
    PacedP95(&'static str),
    /// The median call for one short sentence, ms.
    OneSentence(&'static str),
    /// A criterion benchmark's median over another's (a ratio): `model_latency_short`'s call
    /// of N sentences over its call of one.
    CriterionRatio { id: &'static str, base: &'static str },
    /// Our worst cosine to the reference fixtures minus a peer's.
    WorstCosineOver { ours: &'static str, peer: &'static str },
    /// Another measure, only on a CPU with this instruction-set flag (as `/proc/cpuinfo` names
    /// it).
    OnCpuWith { flag: &'static str, measure: &'static Measure },
}

/// What a figure must be.
enum Bound {
    AtLeast(f64),
    AtMost(f64),
    Above(f64),
    Below(f64),
}

/// One row of the targets table.
struct Target {
    label: &'static str,
    measure: Measure,
    bound: Bound,
}

/// The targets the report checks: the founding plan's, and the CPU issues'.
const TARGETS: [Target; 27] = [
    Target {
        label: "founding plan, 100 connections: 200+ requests/s",
        measure: Measure::Load("short-100", LoadField::RequestsPerS),
        bound: Bound::AtLeast(200.0),
    },
    Target {
        label: "founding plan, 100 connections: p50 < 20 ms",
        measure: Measure::Load("short-100", LoadField::P50),
        bound: Bound::Below(20.0),
    },
    Target {
        label: "founding plan, 100 connections: p95 < 35 ms",
        measure: Measure::Load("short-100", LoadField::P95),
        bound: Bound::Below(35.0),
    },
    Target {
        label: "founding plan, 100 connections: p99 < 50 ms",
        measure: Measure::Load("short-100", LoadField::P99),
        bound: Bound::Below(50.0),
    },
    Target {
        label: "founding plan: error rate < 0.1%",
        measure: Measure::ErrorRate("short-100"),
        bound: Bound::Below(0.1),
    },
    Target { label: "founding plan: resident memory < 500 MB", measure: Measure::PeakRss, bound: Bound::Below(500.0) },
    Target {
        label: "f32, short corpus, batch 32: 1.3x sentence-transformers",
        measure: Measure::VsPeer { ours: "f32", peer: "sentence-transformers", corpus: "short", batch: 32 },
        bound: Bound::AtLeast(1.3),
    },
    Target {
        label: "f32, short corpus, batch 32: 70% of the f32 compute ceiling",
        measure: Measure::CeilingShare { ours: "f32", batch: 32, rate: Ceiling::Sgemm },
        bound: Bound::AtLeast(70.0),
    },
    Target {
        label: "f32, medium corpus, batch 32: 1.2x sentence-transformers",
        measure: Measure::VsPeer { ours: "f32", peer: "sentence-transformers", corpus: "medium", batch: 32 },
        bound: Bound::AtLeast(1.2),
    },
    Target {
        label: "HTTP, 100 connections: 1.0x sentence-transformers' batch-32 rate",
        measure: Measure::ServedVsPeer { scenario: "short-100", peer: "sentence-transformers", batch: 32 },
        bound: Bound::AtLeast(1.0),
    },
    Target {
        label: "HTTP, 100 requests/s offered on 100 connections: p95 < 35 ms",
        measure: Measure::PacedP95("short-100-at-100rps"),
        bound: Bound::Below(35.0),
    },
    Target {
        label: "f32, one short sentence alone: < 5 ms",
        measure: Measure::OneSentence("f32"),
        bound: Bound::Below(5.0),
    },
    Target {
        label: "bf16, short corpus, batch 32: 1.5x our f32",
        measure: Measure::VsOurs { run: "bf16", base: "f32", corpus: "short", batch: 32 },
        bound: Bound::AtLeast(1.5),
    },
    Target {
        label: "bf16, medium corpus, batch 32: 1.4x our f32",
        measure: Measure::VsOurs { run: "bf16", base: "f32", corpus: "medium", batch: 32 },
        bound: Bound::AtLeast(1.4),
    },
    Target {
        label: "bf16, one short sentence alone: <= 2.5 ms",
        measure: Measure::OneSentence("bf16"),
        bound: Bound::AtMost(2.5),
    },
    Target {
        label: "bf16, one short sentence: below ONNX Runtime's call",
        measure: Measure::OneSentenceVsPeer { ours: "bf16", peer: "onnxruntime" },
        bound: Bound::Below(1.0),
    },
    Target {
        label: "bf16, short corpus, batch 32: share of the bf16 dot-product ceiling (reported)",
        measure: Measure::CeilingShare { ours: "bf16", batch: 32, rate: Ceiling::Bf16 },
        bound: Bound::AtLeast(0.0),
    },
    Target {
        label: "bf16, short corpus, batch 32: faster than ONNX Runtime",
        measure: Measure::VsPeer { ours: "bf16", peer: "onnxruntime", corpus: "short", batch: 32 },
        bound: Bound::AtLeast(1.0),
    },
    Target {
        label: "AVX2 f32, short corpus, batch 32: 0.6x our AVX-512 f32",
        measure: Measure::VsOurs { run: "avx2_f32", base: "f32", corpus: "short", batch: 32 },
        bound: Bound::AtLeast(0.6),
    },
    Target {
        label: "AVX2 f16 weights (the AVX2 default), one short sentence: at most 0.7x ONNX Runtime fp32's call (uncapped)",
        measure: Measure::OneSentenceVsPeer { ours: "avx2_f16", peer: "onnxruntime" },
        bound: Bound::AtMost(0.7),
    },
    Target {
        label: "AVX2 f32, short corpus, batch 32: 75% of the AVX2 multiply-add ceiling",
        measure: Measure::CeilingShare { ours: "avx2_f32", batch: 32, rate: Ceiling::Avx2Fma },
        bound: Bound::AtLeast(75.0),
    },
    Target {
        label: "AVX2 int8, short corpus, batch 32: 1.6x our AVX2 f32",
        measure: Measure::VsOurs { run: "avx2_int8", base: "avx2_f32", corpus: "short", batch: 32 },
        bound: Bound::AtLeast(1.6),
    },
    Target {
        label: "AVX2 int8, short corpus, batch 32: faster than ONNX Runtime int8 (uncapped)",
        measure: Measure::VsPeer { ours: "avx2_int8", peer: "onnxruntime-int8", corpus: "short", batch: 32 },
        bound: Bound::Above(1.0),
    },
    Target {
        label: "int8 with AVX-512 VNNI, short corpus, batch 32: 1.3x bf16",
        measure: Measure::OnCpuWith {
            flag: "avx512_vnni",
            measure: &Measure::VsOurs { run: "int8", base: "bf16", corpus: "short", batch: 32 },
        },
        bound: Bound::AtLeast(1.3),
    },
    Target {
        label: "default precision, a call of 2 short sentences: at most 1.3x one sentence's (criterion, model only)",
        measure: Measure::CriterionRatio {
            id: "model_latency_short/model_only/2",
            base: "model_latency_short/model_only/1",
        },
        bound: Bound::AtMost(1.3),
    },
    Target {
        label: "default precision, a call of 4 short sentences: at most 1.7x one sentence's (criterion, model only)",
        measure: Measure::CriterionRatio {
            id: "model_latency_short/model_only/4",
            base: "model_latency_short/model_only/1",
        },
        bound: Bound::AtMost(1.7),
    },
    Target {
        label: "AVX2 int8: worst fixture cosine no lower than ONNX Runtime int8's",
        measure: Measure::WorstCosineOver { ours: "avx2_int8", peer: "onnxruntime-int8" },
        bound: Bound::AtLeast(0.0),
    },
];

impl Bound {
    fn met(&self, value: f64) -> bool {
        match *self {
            Self::AtLeast(bound) => value >= bound,
            Self::AtMost(bound) => value <= bound,
            Self::Above(bound) => value > bound,
            Self::Below(bound) => value < bound,
        }
    }
}

impl Rendered<'_> {
    /// Each target's label, its figure as shown (or why there is none), and `met`, `missed`
    /// or `-`.
    pub(super) fn checked_targets(&self) -> impl Iterator<Item = (&'static str, String, &'static str)> + '_ {
        TARGETS.iter().map(|target| match self.figure(&target.measure) {
            // A target that does not apply here (NaN) is neither met nor missed.
            Some((value, text)) if value.is_nan() => (target.label, text, "-"),
            Some((value, text)) => (target.label, text, if target.bound.met(value) { "met" } else { "missed" }),
            None => (target.label, "not measured in this run".to_string(), "-"),
        })
    }

    /// A target's figure and how to show it.
    fn figure(&self, measure: &Measure) -> Option<(f64, String)> {
        let rounds = &self.report.load_rounds;
        let median = |scenario: &str, field: LoadField| {
            let outcomes = self.report.rounds_of(scenario);
            (!outcomes.is_empty()).then(|| load_spread(&outcomes, |o| field.of(o)).0)
        };
        match *measure {
            Measure::Load(scenario, field) => {
                let v = median(scenario, field)?;
                Some(match field {
                    LoadField::RequestsPerS => (v, format!("{v:.0} requests/s")),
                    _ => (v, format!("{v:.1} ms")),
                })
            }
            Measure::ErrorRate(scenario) => {
                let outcomes = self.report.rounds_of(scenario);
                let failed: f64 = outcomes.iter().map(|o| (o.non_2xx + o.socket_errors) as f64).sum();
                let total: f64 = outcomes.iter().map(|o| o.requests_per_s * f64::from(o.seconds)).sum();
                let rate = 100.0 * failed / total.max(1.0);
                (!outcomes.is_empty()).then(|| (rate, format!("{rate:.3}%")))
            }
            Measure::PeakRss => {
                let mib = rounds.iter().flatten().map(|o| o.peak_rss_mib).fold(f64::NAN, f64::max);
                let mb = mib * 1.048_576;
                mb.is_finite().then(|| (mb, format!("{mb:.0} MB peak")))
            }
            Measure::VsPeer { ours, peer, corpus, batch } => {
                let (a, b) =
                    (Self::rate(self.ours(ours), corpus, batch)?.0, Self::rate(self.peer(peer), corpus, batch)?.0);
                Some((a / b, format!("{a:.1} vs {b:.1} sentences/s: {:.2}x", a / b)))
            }
            Measure::CeilingShare { ours, batch, rate: which } => {
                let rate = Self::rate(self.ours(ours), "short", batch)?.0;
                let (ceiling, gflops) = self.ceiling(which)?;
                let share = 100.0 * rate / ceiling;
                let what = which.name();
                Some((share, format!("{share:.0}% of {ceiling:.0} sentences/s ({what} {gflops:.0} GFLOP/s)")))
            }
            Measure::VsOurs { run, base, corpus, batch } => {
                let (a, b) =
                    (Self::rate(self.ours(run), corpus, batch)?.0, Self::rate(self.ours(base), corpus, batch)?.0);
                Some((a / b, format!("{a:.1} vs {b:.1} sentences/s: {:.2}x", a / b)))
            }
            Measure::OneSentenceVsPeer { ours, peer } => {
                let a = self.ours(ours)?.row("short", 1)?.call_p50_ms?;
                let b = self.peer(peer)?.row("short", 1)?.call_p50_ms?;
                Some((a / b, format!("{a:.2} vs {b:.2} ms: {:.2}x", a / b)))
            }
            Measure::ServedVsPeer { scenario, peer, batch } => {
                let (a, b) =
                    (median(scenario, LoadField::RequestsPerS)?, Self::rate(self.peer(peer), "short", batch)?.0);
                Some((a / b, format!("{a:.0} requests/s vs {b:.0} sentences/s: {:.2}x", a / b)))
            }
            Measure::PacedP95(scenario) => {
                let (p95, rate) = (median(scenario, LoadField::P95)?, median(scenario, LoadField::RequestsPerS)?);
                Some((p95, format!("p95 {p95:.1} ms at {rate:.0} requests/s")))
            }
            Measure::OneSentence(run) => {
                let ms = self.ours(run)?.row("short", 1)?.call_p50_ms?;
                Some((ms, format!("{ms:.2} ms (median call, tokenization included)")))
            }
            Measure::CriterionRatio { id, base } => {
                let median = |id: &str| self.report.criterion.iter().find(|c| c.id == id).map(|c| c.median_ns / 1e6);
                let (a, b) = (median(id)?, median(base)?);
                Some((a / b, format!("{a:.2} vs {b:.2} ms: {:.2}x", a / b)))
            }
            Measure::OnCpuWith { flag, measure } => {
                if self.report.machine.isa.iter().any(|f| f == flag) {
                    self.figure(measure)
                } else {
                    Some((f64::NAN, format!("not on this CPU (no {flag})")))
                }
            }
            Measure::WorstCosineOver { ours, peer } => {
                let (a, b) = (self.ours(ours)?.fixture_cosine?.min, self.peer(peer)?.fixture_cosine?.min);
                Some((a - b, format!("{a:.6} vs {b:.6}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use aki_bench_report::{
        CorpusSize, CriterionResult, FixtureCosine, LoadOutcome, Machine, Report, ThroughputRow, ThroughputRun,
    };

    use super::*;

    fn run(engine: &str, rate: f64, p50: Option<f64>) -> ThroughputRun {
        ThroughputRun {
            engine: engine.into(),
            versions: BTreeMap::from([("lib".to_string(), "1.0".to_string())]),
            threads: 2,
            sgemm_gflops: Some(100.0),
            bf16_gflops: None,
            avx2_fma_gflops: None,
            corpora: BTreeMap::from([("short".to_string(), CorpusSize { texts: 10, tokens: 150 })]),
            fixture_cosine: None,
            rows: [1, 32]
                .map(|batch| ThroughputRow {
                    corpus: "short".into(),
                    batch,
                    sentences_per_s: vec![rate, rate * 1.1],
                    call_p50_ms: p50,
                })
                .into(),
        }
    }

    fn cosine(min: f64) -> FixtureCosine {
        FixtureCosine { min, mean: (1.0 + min) / 2.0 }
    }

    #[test]
    fn targets_are_computed_from_the_typed_report() {
        let outcome = LoadOutcome {
            scenario: "short-100".into(),
            connections: 100,
            seconds: 10,
            offered_rate: None,
            requests_per_s: 250.0,
            p50_ms: 30.0,
            p95_ms: 40.0,
            p99_ms: 60.0,
            non_2xx: 0,
            socket_errors: 0,
            peak_rss_mib: 200.0,
            cpu_cores: 2.0,
        };
        let report = Report {
            machine: Machine {
                cpu: "test".into(),
                isa: vec!["avx2".into()],
                cores: 2,
                memory_gib: 8.0,
                kernel: "k".into(),
                rustc: "r".into(),
                commit: "c".into(),
                date: "d".into(),
            },
            quick: false,
            repeat: 1,
            throughput: BTreeMap::from([
                ("f32".to_string(), run("aki", 300.0, Some(4.0))),
                ("avx2_f32".to_string(), ThroughputRun { avx2_fma_gflops: Some(100.0), ..run("aki", 300.0, None) }),
                (
                    "avx2_int8".to_string(),
                    ThroughputRun { fixture_cosine: Some(cosine(0.995)), ..run("aki", 600.0, None) },
                ),
                ("int8".to_string(), run("aki", 500.0, None)),
                ("bf16".to_string(), run("aki", 400.0, None)),
            ]),
            peers: BTreeMap::from([
                ("sentence-transformers".to_string(), run("st", 100.0, None)),
                (
                    "onnxruntime-int8".to_string(),
                    ThroughputRun { fixture_cosine: Some(cosine(0.96)), ..run("ort", 600.0, None) },
                ),
            ]),
            load_rounds: vec![vec![outcome]],
            mixed_rounds: Vec::new(),
            padding: Vec::new(),
            criterion: [(1, 2.0), (2, 3.0)]
                .map(|(n, ms)| CriterionResult {
                    id: format!("model_latency_short/model_only/{n}"),
                    median_ns: ms * 1e6,
                    ci_low_ns: ms * 1e6,
                    ci_high_ns: ms * 1e6,
                    elements: Some(n),
                })
                .into(),
        };
        // 2 MFLOP per token, 15 tokens per sentence: 100 GFLOP/s is 3333 sentences/s.
        let md = Rendered::new(&report, Some(2e6), Some("the GPU table".into())).markdown();
        assert!(md.contains("## GPU (lent H100)\n\nthe GPU table"), "{md}");
        assert!(md.contains("| founding plan, 100 connections: 200+ requests/s | 250 requests/s | met |"), "{md}");
        assert!(md.contains("| founding plan, 100 connections: p50 < 20 ms | 30.0 ms | missed |"), "{md}");
        assert!(md.contains("315.0 vs 105.0 sentences/s: 3.00x | met |"), "{md}");
        assert!(md.contains("| f32, one short sentence alone: < 5 ms | 4.00 ms"), "{md}");
        assert!(md.contains("| peer | sentence-transformers: lib 1.0 (CPU), 2 threads |"), "{md}");
        assert!(md.contains("| HTTP, 100 requests/s offered on 100 connections: p95 < 35 ms | not measured"), "{md}");
        assert!(md.contains("a call of 2 short sentences: at most 1.3x one sentence's (criterion, model only) | 3.00 vs 2.00 ms: 1.50x | missed |"), "{md}");
        assert!(
            md.contains(
                "a call of 4 short sentences: at most 1.7x one sentence's (criterion, model only) | not measured"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "AVX2 multiply-add ceiling | 9% of 3333 sentences/s (AVX2 multiply-adds 100 GFLOP/s) | missed |"
            ),
            "{md}"
        );
        assert!(
            md.contains("faster than ONNX Runtime int8 (uncapped) | 630.0 vs 630.0 sentences/s: 1.00x | missed |"),
            "{md}"
        );
        assert!(md.contains("no lower than ONNX Runtime int8's | 0.995000 vs 0.960000 | met |"), "{md}");
        assert!(md.contains("1.3x bf16 | not on this CPU (no avx512_vnni) | - |"), "{md}");
    }
}
