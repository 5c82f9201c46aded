//! The prose and tables of `docs/benchmarks.md`: one method per section, which `markdown`
//! puts in order.

use std::fmt::Write as _;

use aki_bench_report::{LoadOutcome, MixedOutcome, Spread, ThroughputRun, load_spread, spread};

use super::figures::{Ceiling, Rendered};

impl Rendered<'_> {
    /// The whole of `benchmarks.md`.
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
        self.precisions(&mut md);
        self.load_section(&mut md);
        self.mixed_section(&mut md);
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
        for (label, text, status) in self.checked_targets() {
            let _ = writeln!(md, "| {label} | {text} | {status} |");
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
            "\nAt batch 32: f32 and f16 weights with the kernels capped at AVX2 (`--isa avx2`, what AVX2-only CPUs \
             run; f16 is their default), f32 on one thread (`--threads 1`), and candle-transformers' padded BERT \
             (`--engine candle`, the path before the packed one and still the one for GPUs):\n\n\
             | corpus | f32, AVX-512 | f32, AVX2 | AVX2 / AVX-512 | f16, AVX2 | f32, 1 thread | thread scaling | candle-transformers | f32 / candle |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        let ratio =
            |a: Option<Spread>, b: Option<Spread>| a.zip(b).map_or("-".into(), |(a, b)| format!("{:.2}x", a.0 / b.0));
        for corpus in ["short", "medium"] {
            let f32 = Self::rate(self.ours("f32"), corpus, 32);
            let avx2 = Self::rate(self.ours("avx2_f32"), corpus, 32);
            let avx2_f16 = Self::rate(self.ours("avx2_f16"), corpus, 32);
            let one = Self::rate(self.ours("f32_one_thread"), corpus, 32);
            let candle = Self::rate(self.ours("candle"), corpus, 32);
            let _ = writeln!(
                md,
                "| {corpus} | {} | {} | {} | {} | {} | {} | {} | {} |",
                f32.map_or("-".into(), triple),
                avx2.map_or("-".into(), triple),
                ratio(avx2, f32),
                avx2_f16.map_or("-".into(), triple),
                one.map_or("-".into(), triple),
                ratio(f32, one),
                candle.map_or("-".into(), triple),
                ratio(f32, candle)
            );
        }
        let one = |run: &str| self.ours(run).and_then(|r| r.row("short", 1)).and_then(|r| r.call_p50_ms);
        if let Some(f32) = one("avx2_f32") {
            let f16 = one("avx2_f16").map_or(String::new(), |ms| format!(", in f16 weights {ms:.2} ms"));
            let _ = writeln!(
                md,
                "\nOne short sentence with the kernels capped at AVX2: in f32 {f32:.2} ms median call{f16}."
            );
        }
        if let (Some((ceiling, sgemm)), Some(short), Some(flops)) =
            (self.ceiling(Ceiling::Sgemm), self.ours("f32").and_then(|r| r.corpora.get("short")), self.flops_per_token)
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
                self.ceiling(Ceiling::Bf16).map_or("no bf16 dot-product rate on this CPU".into(), |(c, g)| format!(
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
        for rounds in self.report.scenarios() {
            let Some(first) = rounds.first() else { continue };
            let fmt = |field: fn(&LoadOutcome) -> f64, digits: usize| {
                let (median, low, high) = load_spread(&rounds, field);
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

    fn mixed_section(&self, md: &mut String) {
        let Some(first) = self.report.mixed_rounds.first() else { return };
        let _ = writeln!(
            md,
            "## Bulk indexing alongside queries\n\n`cargo xtask load` (mixed scenario, `xtask/src/mixed.rs`): {} query \
             clients posting one short text per request and {} bulk clients posting {} medium passages per request, \
             back to back, each kind alone for {} s and then together; every text is unique, so the result cache \
             answers none. One column per round.\n",
            first.query_clients, first.bulk_clients, first.passages_per_request, first.seconds
        );
        let rounds = &self.report.mixed_rounds;
        let row = |md: &mut String, name: &str, value: &dyn Fn(&MixedOutcome) -> String| {
            let cells: Vec<String> = rounds.iter().map(value).collect();
            let _ = writeln!(md, "| {name} | {} |", cells.join(" | "));
        };
        let headers: Vec<String> = (1..=rounds.len()).map(|r| format!("round {r}")).collect();
        let _ = writeln!(md, "| | {} |\n|---|{}", headers.join(" | "), "---:|".repeat(rounds.len()));
        row(md, "query p50 alone, ms", &|o| format!("{:.1}", o.query_p50_alone_ms));
        row(md, "query p99 alone, ms", &|o| format!("{:.1}", o.query_p99_alone_ms));
        row(md, "query p50 with bulk, ms", &|o| format!("{:.1}", o.query_p50_with_bulk_ms));
        row(md, "query p99 with bulk, ms", &|o| format!("{:.1}", o.query_p99_with_bulk_ms));
        row(md, "bulk passages/s alone", &|o| format!("{:.1}", o.bulk_passages_per_s_alone));
        row(md, "bulk passages/s with queries", &|o| format!("{:.1}", o.bulk_passages_per_s_with_queries));
        row(md, "failed queries / bulk requests", &|o| format!("{} / {}", o.failed_queries, o.failed_bulk));
        row(md, "wasted tokens", &|o| o.wasted_tokens.map_or_else(|| "-".into(), |w| w.to_string()));
        md.push('\n');
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
             N short sentences of one length, the corpus's median in tokens (`model_only`: pre-tokenized); \
             `tokenization` takes all 1024 short sentences.\n\n\
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
}

pub(super) fn triple((median, low, high): Spread) -> String {
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
