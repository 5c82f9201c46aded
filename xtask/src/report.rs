//! `docs/benchmarks.md` and its charts, rendered from a [`Report`]. The targets are a table of
//! data ([`TARGETS`]): what each measures, and the bound it must meet.

use std::fmt::Write as _;

use aki_bench_report::{LoadOutcome, Report, ThroughputRun};

use crate::bench::rounds_of;

/// A field of a load outcome.
#[derive(Clone, Copy)]
enum LoadField {
    RequestsPerS,
    P50,
    P95,
    P99,
}

impl LoadField {
    fn of(self, o: &LoadOutcome) -> f64 {
        match self {
            Self::RequestsPerS => o.requests_per_s,
            Self::P50 => o.p50_ms,
            Self::P95 => o.p95_ms,
            Self::P99 => o.p99_ms,
        }
    }
}

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
    /// Our throughput on the short corpus at a batch size, percent of the compute ceiling (the
    /// f32 one, or with `bf16` the bf16 dot-product one).
    CeilingShare { ours: &'static str, batch: usize, bf16: bool },
    /// A load scenario's requests/s over a peer's library rate at a batch size (a ratio).
    ServedVsPeer { scenario: &'static str, peer: &'static str, batch: usize },
    /// The p95 of a paced scenario, ms.
    PacedP95(&'static str),
    /// The median call for one short sentence, ms.
    OneSentence(&'static str),
}

/// What a figure must be.
enum Bound {
    AtLeast(f64),
    AtMost(f64),
    Below(f64),
}

/// One row of the targets table.
struct Target {
    label: &'static str,
    measure: Measure,
    bound: Bound,
}

/// The targets the report checks: the founding plan's, and the CPU issues'.
const TARGETS: [Target; 19] = [
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
        measure: Measure::CeilingShare { ours: "f32", batch: 32, bf16: false },
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
        measure: Measure::CeilingShare { ours: "bf16", batch: 32, bf16: true },
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
];

/// Median, lowest and highest of `values` (NaN when empty).
pub fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => (f64::NAN, f64::NAN, f64::NAN),
        n => {
            let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
            (median, sorted[0], sorted[n - 1])
        }
    }
}

/// Which figure a chart plots.
pub enum Metric {
    Throughput,
    P95,
}

/// Linear-layer work per token of a BERT encoder: `2 * layers * (4 h^2 + 2 h i)` FLOPs.
fn linear_flops_per_token() -> Option<f64> {
    let path = aki_core::paths::installed_model_dir(aki_core::paths::DEFAULT_MODEL).join("config.json");
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let get = |key: &str| config[key].as_f64();
    let (h, i, layers) = (get("hidden_size")?, get("intermediate_size")?, get("num_hidden_layers")?);
    Some(2.0 * layers * (4.0 * h * h + 2.0 * h * i))
}

/// A report ready to render.
pub struct Rendered<'a> {
    report: &'a Report,
    flops_per_token: Option<f64>,
    /// The GPU figures kept in `benches/results/gpu-h100.md` (no GPU where the bench runs).
    gpu: Option<String>,
}

impl<'a> Rendered<'a> {
    pub fn new(report: &'a Report, gpu: Option<String>) -> Self {
        Self { report, flops_per_token: linear_flops_per_token(), gpu }
    }

    fn ours(&self, run: &str) -> Option<&ThroughputRun> {
        self.report.throughput.get(run)
    }

    fn peer(&self, name: &str) -> Option<&ThroughputRun> {
        self.report.peers.get(name)
    }

    /// (median, lowest, highest) sentences/s of `run` for `corpus` at `batch`.
    fn rate(run: Option<&ThroughputRun>, corpus: &str, batch: usize) -> Option<(f64, f64, f64)> {
        run?.row(corpus, batch).map(|r| spread(&r.sentences_per_s))
    }

    /// Scenario names in run order, each with every round's outcome.
    fn scenarios(&self) -> Vec<Vec<&LoadOutcome>> {
        let rounds = &self.report.load_rounds;
        let first = rounds.first().map(Vec::as_slice).unwrap_or_default();
        first.iter().map(|o| rounds_of(rounds, &o.scenario)).collect()
    }

    fn load_stat(outcomes: &[&LoadOutcome], field: impl Fn(&LoadOutcome) -> f64) -> (f64, f64, f64) {
        spread(&outcomes.iter().map(|o| field(o)).collect::<Vec<_>>())
    }

    /// Sentences/s the machine's best measured f32 matrix multiply (or with `bf16` its bf16
    /// dot-product rate) allows on the short corpus (linear layers only), with the rate used.
    fn ceiling(&self, bf16: bool) -> Option<(f64, f64)> {
        let ours = self.ours("f32")?;
        let sgemm = if bf16 {
            self.ours("bf16")?.bf16_gflops?
        } else {
            self.report.peers.values().chain([ours]).filter_map(|r| r.sgemm_gflops).fold(0.0, f64::max)
        };
        let short = ours.corpora.get("short")?;
        let flops = self.flops_per_token? * short.tokens as f64 / short.texts as f64;
        (sgemm > 0.0).then(|| (sgemm * 1e9 / flops, sgemm))
    }

    /// A target's figure and how to show it.
    fn figure(&self, measure: &Measure) -> Option<(f64, String)> {
        let rounds = &self.report.load_rounds;
        let median = |scenario: &str, field: LoadField| {
            let outcomes = rounds_of(rounds, scenario);
            (!outcomes.is_empty()).then(|| Self::load_stat(&outcomes, |o| field.of(o)).0)
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
                let outcomes = rounds_of(rounds, scenario);
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
            Measure::CeilingShare { ours, batch, bf16 } => {
                let rate = Self::rate(self.ours(ours), "short", batch)?.0;
                let (ceiling, gflops) = self.ceiling(bf16)?;
                let share = 100.0 * rate / ceiling;
                let what = if bf16 { "bf16 dot products" } else { "sgemm" };
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
        }
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let (report, m) = (self.report, &self.report.machine);
        let command = format!(
            "cargo xtask bench{}{}{}",
            if report.quick { " --quick" } else { "" },
            if report.peers.is_empty() { "" } else { " --peers" },
            format_args!(" --repeat {}", report.repeat)
        );
        let _ = writeln!(md, "# Benchmarks\n");
        let _ = writeln!(
            md,
            "Written by `{command}` on {} at commit {}; rerun the command rather than editing this file. \
             The same figures, every run included, are in `benchmarks.json`. Absolute numbers on shared \
             2-core machines vary by up to 30% between runs: compare within one report. Each figure is \
             the median of {} runs with the lowest and highest in brackets.\n",
            m.date, m.commit, report.repeat
        );
        if report.quick {
            let _ = writeln!(
                md,
                "**Smoke run** (`--quick`): a few texts and seconds per figure on the dev build, to check the \
                 harness works; its numbers mean nothing.\n"
            );
        }
        let _ = writeln!(md, "## Machine\n\n| | |\n|---|---|");
        let _ = writeln!(md, "| CPU | {} |", m.cpu);
        let _ = writeln!(md, "| cores | {} |", m.cores);
        let _ = writeln!(md, "| memory GiB | {} |", m.memory_gib);
        let _ = writeln!(md, "| instruction sets | {} |", m.isa.join(", "));
        let _ = writeln!(md, "| kernel | {} |", m.kernel);
        let _ = writeln!(md, "| rustc | {} |", m.rustc);
        for (name, peer) in &report.peers {
            let versions: Vec<String> = peer.versions.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(md, "| peer | {name}: {} (CPU), {} threads |", versions.join(", "), peer.threads);
        }
        md.push('\n');
        self.targets(&mut md);
        self.library(&mut md);
        self.load_section(&mut md);
        self.padding_section(&mut md);
        self.criterion_section(&mut md);
        if let Some(gpu) = &self.gpu {
            let _ = writeln!(md, "## GPU (lent H100)\n\n{}", gpu.trim_end());
            md.push('\n');
        }
        md
    }

    fn padding_section(&self, md: &mut String) {
        if self.report.padding.is_empty() {
            return;
        }
        let _ = writeln!(
            md,
            "## Padding\n\n`cargo bench -p aki-benches --bench padding`: the padded candle-transformers path (the one GPUs \
             run; `backend.packed = false`) on the CPU, a mixed corpus of three short sentences to one medium passage, \
             every text its own concurrent request through the batcher with 128 texts per call at most. Padding share: \
             the computed tokens that were padding (`aki_batch_padded_tokens_total` less `aki_batch_real_tokens_total`, \
             over the first).\n\n\
             | max_batch_tokens | min_fill_percent | padding share | model calls | texts per call | sentences/s |\n\
             |---:|---:|---:|---:|---:|---:|"
        );
        for row in &self.report.padding {
            let _ = writeln!(
                md,
                "| {} | {} | {:.1}% | {} | {:.1} | {:.1} |",
                row.max_batch_tokens,
                row.min_fill_percent,
                100.0 * row.padding_share,
                row.batches,
                row.texts_per_batch,
                row.sentences_per_s
            );
        }
        md.push('\n');
    }

    fn targets(&self, md: &mut String) {
        let _ = writeln!(md, "## Targets\n\n| target | measured | |\n|---|---|---|");
        for target in &TARGETS {
            let (text, status) = match self.figure(&target.measure) {
                Some((value, text)) => {
                    let met = match target.bound {
                        Bound::AtLeast(bound) => value >= bound,
                        Bound::AtMost(bound) => value <= bound,
                        Bound::Below(bound) => value < bound,
                    };
                    (text, if met { "met" } else { "missed" })
                }
                None => ("not measured in this run".to_string(), "-"),
            };
            let _ = writeln!(md, "| {} | {text} | {status} |", target.label);
        }
        md.push('\n');
    }

    fn library(&self, md: &mut String) {
        let repeat = self.report.repeat;
        let (st, ort) = (self.peer("sentence-transformers"), self.peer("onnxruntime"));
        let _ = writeln!(
            md,
            "## Library throughput\n\n`cargo bench -p aki-benches --bench throughput -- --dtype f32|bf16 --repeat {repeat}`: each \
             corpus (`benches/data/`) embedded from text in calls of the batch size (tokenization, forward pass, pooling, \
             normalisation), the whole corpus per run after a warm-up run, on the packed path with f32 weights and with \
             bf16 weights.{} Sentences/s, and the median call in ms:\n",
            if self.report.peers.is_empty() {
                " Run with `--peers` to add sentence-transformers and ONNX Runtime."
            } else {
                " The peers, `scripts/peer_sentence_transformers.py` (`SentenceTransformer.encode(texts, batch_size)`) and \
                 `scripts/peer_onnxruntime.py` (the same weights exported with `torch.onnx.export`, optimised by \
                 `onnxruntime.transformers.optimizer`, mean pooling in numpy, checked against the fixtures first), do the \
                 same in the same run on the same number of threads."
            }
        );
        let _ = writeln!(
            md,
            "| corpus | batch | aki f32 | aki bf16 | bf16 / f32 | call ms f32 / bf16 | sentence-transformers | ONNX Runtime (call ms) | bf16 / best peer |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        let bf16 = self.ours("bf16");
        for r in self.ours("f32").map(|run| run.rows.as_slice()).unwrap_or_default() {
            let ours = spread(&r.sentences_per_s);
            let half = bf16.and_then(|run| run.row(&r.corpus, r.batch));
            let half_rate = half.map(|h| spread(&h.sentences_per_s));
            let (theirs, onnx) = (Self::rate(st, &r.corpus, r.batch), Self::rate(ort, &r.corpus, r.batch));
            let onnx_call = ort.and_then(|p| p.row(&r.corpus, r.batch)).and_then(|row| row.call_p50_ms);
            let best_peer = theirs.map(|t| t.0).into_iter().chain(onnx.map(|o| o.0)).fold(f64::NAN, f64::max);
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {:.2} / {} | {} | {} | {} |",
                r.corpus,
                r.batch,
                triple(ours),
                half_rate.map_or("-".into(), triple),
                half_rate.map_or("-".into(), |h| format!("{:.2}x", h.0 / ours.0)),
                r.call_p50_ms.unwrap_or(f64::NAN),
                half.and_then(|h| h.call_p50_ms).map_or("-".into(), |ms| format!("{ms:.2}")),
                theirs.map_or("-".into(), triple),
                onnx.map_or("-".into(), |o| format!(
                    "{} ({})",
                    triple(o),
                    onnx_call.map_or("-".into(), |c| format!("{c:.2}"))
                )),
                half_rate.filter(|_| best_peer.is_finite()).map_or("-".into(), |h| format!("{:.2}x", h.0 / best_peer)),
            );
        }
        let _ = writeln!(
            md,
            "\nAt batch 32: f32 with the kernels capped at AVX2 (`--isa avx2`, what AVX2-only CPUs run), f32 on one \
             thread (`--threads 1`), and candle-transformers' padded BERT (`--engine candle`, the path before the packed \
             one and still the one for GPUs):\n\n\
             | corpus | f32, AVX-512 | f32, AVX2 | AVX2 / AVX-512 | f32, 1 thread | thread scaling | candle-transformers | f32 / candle |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|"
        );
        let ratio = |a: Option<(f64, f64, f64)>, b: Option<(f64, f64, f64)>| {
            a.zip(b).map_or("-".into(), |(a, b)| format!("{:.2}x", a.0 / b.0))
        };
        for corpus in ["short", "medium"] {
            let f32 = Self::rate(self.ours("f32"), corpus, 32);
            let avx2 = Self::rate(self.ours("avx2_f32"), corpus, 32);
            let one = Self::rate(self.ours("f32_one_thread"), corpus, 32);
            let candle = Self::rate(self.ours("candle"), corpus, 32);
            let _ = writeln!(
                md,
                "| {corpus} | {} | {} | {} | {} | {} | {} | {} |",
                f32.map_or("-".into(), triple),
                avx2.map_or("-".into(), triple),
                ratio(avx2, f32),
                one.map_or("-".into(), triple),
                ratio(f32, one),
                candle.map_or("-".into(), triple),
                ratio(f32, candle)
            );
        }
        if let Some(one) = self.ours("avx2_f32").and_then(|r| r.row("short", 1)).and_then(|r| r.call_p50_ms) {
            let _ = writeln!(md, "\nOne short sentence with the kernels capped at AVX2: {one:.2} ms median call.");
        }
        if let (Some((ceiling, sgemm)), Some(short), Some(flops)) =
            (self.ceiling(false), self.ours("f32").and_then(|r| r.corpora.get("short")), self.flops_per_token)
        {
            let sgemm_of = |run: Option<&ThroughputRun>| run.and_then(|r| r.sgemm_gflops);
            let _ = writeln!(
                md,
                "\nCompute ceilings: the linear layers' work, 2 x layers x (4h^2 + 2hi) = {:.1} MFLOP per token, at {:.1} tokens \
                 per short text ({} tokens in {} texts), over the best f32 matrix multiply measured in this run (the `gemm` \
                 crate: {:.0} GFLOP/s{}): {ceiling:.0} sentences/s (from {sgemm:.0} GFLOP/s); {}. Attention is not counted.",
                flops / 1e6,
                short.tokens as f64 / short.texts as f64,
                short.tokens,
                short.texts,
                sgemm_of(self.ours("f32")).unwrap_or(f64::NAN),
                sgemm_of(st).map_or(String::new(), |g| format!("; PyTorch: {g:.0}")),
                self.ceiling(true).map_or("no bf16 dot-product rate on this CPU".into(), |(c, g)| format!(
                    "over the bf16 dot-product rate (`vdpbf16ps` on registers, no memory traffic: an upper bound) of {g:.0} GFLOP/s: {c:.0} sentences/s"
                )),
            );
        }
        md.push('\n');
    }

    fn load_section(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "## Load over HTTP\n\n`cargo xtask load` ({} rounds): the release `aki-rest` with its default configuration, \
             wrk with 2 threads on the same cores posting one random line of the corpus per `POST /api/v1/embed` \
             (`scripts/load_embed.lua`). \"at N/s\" scenarios pause each connection between requests so about N \
             requests/s are offered. Peak RSS is the server's `VmHWM`; CPU is the server's user+system time over wall time.\n\n\
             | scenario | connections | requests/s | p50 ms | p95 ms | p99 ms | non-2xx | socket errors | peak RSS MiB | CPU cores |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            self.report.load_rounds.len()
        );
        for rounds in self.scenarios() {
            let Some(first) = rounds.first() else { continue };
            let fmt = |field: fn(&LoadOutcome) -> f64, digits: usize| {
                let (median, low, high) = Self::load_stat(&rounds, field);
                format!("{median:.digits$} [{low:.digits$}-{high:.digits$}]")
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                first.scenario,
                first.connections,
                fmt(|o| o.requests_per_s, 1),
                fmt(|o| o.p50_ms, 1),
                fmt(|o| o.p95_ms, 1),
                fmt(|o| o.p99_ms, 1),
                rounds.iter().map(|o| o.non_2xx).sum::<u64>(),
                rounds.iter().map(|o| o.socket_errors).sum::<u64>(),
                fmt(|o| o.peak_rss_mib, 0),
                fmt(|o| o.cpu_cores, 2),
            );
        }
        let _ = writeln!(
            md,
            "\n![Requests/s against connections](bench-throughput.svg)\n![p95 latency against connections](bench-p95.svg)\n"
        );
    }

    fn criterion_section(&self, md: &mut String) {
        if self.report.criterion.is_empty() {
            return;
        }
        let _ = writeln!(
            md,
            "## Criterion\n\n`cargo bench -p aki-benches --bench batcher_overhead --bench batched_requests --bench model_latency \
             --bench tokenization -- --warm-up-time 1 --measurement-time 3`; median time per iteration with criterion's 95% \
             confidence interval. `batcher_overhead` uses a batch function that does nothing; `batched_requests/N` sends N \
             single-sentence requests at once through the batching provider on the real model; `model_latency_short` embeds \
             the first N short sentences (`model_only`: pre-tokenized); `tokenization` takes all 1024 short sentences.\n\n\
             | benchmark | median | 95% interval | per element | elements/s |\n|---|---:|---:|---:|---:|"
        );
        for c in &self.report.criterion {
            let elements = c.elements.map(|e| e as f64);
            let _ = writeln!(
                md,
                "| {} | {} | {}-{} | {} | {} |",
                c.id,
                duration(c.median_ns),
                duration(c.ci_low_ns),
                duration(c.ci_high_ns),
                elements.map_or("-".into(), |e| duration(c.median_ns / e)),
                elements.map_or("-".into(), |e| format!("{:.0}", e / (c.median_ns / 1e9))),
            );
        }
        md.push('\n');
    }

    /// A line chart of the short scenarios run as fast as answered, against connections.
    pub fn chart(&self, metric: Metric) -> String {
        let field = match metric {
            Metric::Throughput => LoadField::RequestsPerS,
            Metric::P95 => LoadField::P95,
        };
        let points: Vec<(f64, f64, f64, f64)> = self
            .scenarios()
            .iter()
            .filter(|r| r.first().is_some_and(|o| o.scenario.starts_with("short") && o.offered_rate.is_none()))
            .map(|r| {
                let (median, low, high) = Self::load_stat(r, |o| field.of(o));
                (f64::from(r[0].connections), median, low, high)
            })
            .collect();
        let (title, unit, target) = match metric {
            Metric::Throughput => ("Requests/s against concurrent connections (short texts)", "requests/s", 200.0),
            Metric::P95 => ("p95 latency against concurrent connections (short texts)", "ms", 35.0),
        };
        crate::svg::line_chart(title, "connections", unit, &points, target)
    }
}

fn triple((median, low, high): (f64, f64, f64)) -> String {
    format!("{median:.1} [{low:.1}-{high:.1}]")
}

fn duration(ns: f64) -> String {
    match ns {
        n if !n.is_finite() => "-".into(),
        n if n < 1e3 => format!("{n:.0} ns"),
        n if n < 1e6 => format!("{:.1} µs", n / 1e3),
        n if n < 1e9 => format!("{:.1} ms", n / 1e6),
        n => format!("{:.2} s", n / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use aki_bench_report::{CorpusSize, Machine, ThroughputRow};

    use super::*;

    #[test]
    fn spread_is_median_lowest_highest() {
        assert_eq!(spread(&[3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(spread(&[4.0, 1.0, 2.0, 3.0]), (2.5, 1.0, 4.0));
        assert!(spread(&[]).0.is_nan());
    }

    fn run(engine: &str, rate: f64, p50: Option<f64>) -> ThroughputRun {
        ThroughputRun {
            engine: engine.into(),
            versions: BTreeMap::from([("lib".to_string(), "1.0".to_string())]),
            threads: 2,
            sgemm_gflops: Some(100.0),
            bf16_gflops: None,
            corpora: BTreeMap::from([("short".to_string(), CorpusSize { texts: 10, tokens: 150 })]),
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
            throughput: BTreeMap::from([("f32".to_string(), run("aki", 300.0, Some(4.0)))]),
            peers: BTreeMap::from([("sentence-transformers".to_string(), run("st", 100.0, None))]),
            load_rounds: vec![vec![outcome]],
            padding: Vec::new(),
            criterion: Vec::new(),
        };
        let md = Rendered::new(&report, Some("the GPU table".into())).markdown();
        assert!(md.contains("## GPU (lent H100)\n\nthe GPU table"), "{md}");
        assert!(md.contains("| founding plan, 100 connections: 200+ requests/s | 250 requests/s | met |"), "{md}");
        assert!(md.contains("| founding plan, 100 connections: p50 < 20 ms | 30.0 ms | missed |"), "{md}");
        assert!(md.contains("315.0 vs 105.0 sentences/s: 3.00x | met |"), "{md}");
        assert!(md.contains("| f32, one short sentence alone: < 5 ms | 4.00 ms"), "{md}");
        assert!(md.contains("| peer | sentence-transformers: lib 1.0 (CPU), 2 threads |"), "{md}");
        assert!(md.contains("| HTTP, 100 requests/s offered on 100 connections: p95 < 35 ms | not measured"), "{md}");
    }
}
