//! `cargo xtask bench [--quick] [--peers] [--repeat N]`: the criterion suite, the library
//! throughput bench (side by side with sentence-transformers with `--peers`) and the load
//! scenarios, repeated for a median and a spread, written to `docs/benchmarks.md`,
//! `docs/benchmarks.json` and two SVG charts (under `target/bench-quick/` with `--quick`, a
//! smoke run of seconds that the README's test command runs).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::load::{self, Outcome};

/// What `cargo xtask bench` was asked for.
pub struct Options {
    pub quick: bool,
    pub peers: bool,
    pub repeat: usize,
}

impl Options {
    /// Parses `--quick`, `--peers` and `--repeat N`.
    pub fn parse(args: &[String]) -> Result<Self> {
        let quick = args.iter().any(|a| a == "--quick");
        let repeat = match args.iter().position(|a| a == "--repeat") {
            Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).context("--repeat takes a number")?,
            None if quick => 1,
            None => 3,
        };
        if let Some(other) =
            args.iter().find(|a| a.starts_with("--") && !["--quick", "--peers", "--repeat"].contains(&a.as_str()))
        {
            bail!("unknown option {other} (bench takes --quick, --peers, --repeat N)");
        }
        Ok(Self { quick, peers: args.iter().any(|a| a == "--peers"), repeat: repeat.max(1) })
    }
}

/// Runs everything and writes the report.
pub fn run(root: &Path, options: &Options) -> Result<()> {
    crate::fetch_model::run()?;
    let work = root.join("target").join("bench");
    std::fs::create_dir_all(&work)?;
    let out = if options.quick { root.join("target").join("bench-quick") } else { root.join("docs") };
    std::fs::create_dir_all(&out)?;

    let criterion = if options.quick { Vec::new() } else { criterion(root)? };
    let ours = throughput(options, &work)?;
    let peer = if options.peers { Some(peer(root, options, &work)?) } else { None };
    let mut loads: Vec<Vec<Outcome>> = Vec::new();
    for round in 1..=options.repeat {
        println!("load round {round} of {}", options.repeat);
        loads.push(load::run(root, options.quick)?);
    }

    let report = Report { options, machine: machine(root), criterion, ours, peer, loads };
    let json = report.json();
    std::fs::write(out.join("benchmarks.json"), serde_json::to_string_pretty(&json)? + "\n")?;
    std::fs::write(out.join("bench-throughput.svg"), report.chart(Metric::Throughput))?;
    std::fs::write(out.join("bench-p95.svg"), report.chart(Metric::P95))?;
    std::fs::write(out.join("benchmarks.md"), report.markdown())?;
    println!("wrote {}", out.join("benchmarks.md").display());
    Ok(())
}

/// Runs the criterion benches and reads back each benchmark's median and confidence interval.
fn criterion(root: &Path) -> Result<Vec<Value>> {
    let dir = root.join("target").join("criterion");
    let _ = std::fs::remove_dir_all(&dir);
    crate::run(
        crate::cargo()
            .args(["bench", "-p", "aki-benches"])
            .args(
                ["batcher_overhead", "batched_requests", "model_latency", "tokenization"]
                    .iter()
                    .flat_map(|b| ["--bench", b]),
            )
            .args(["--", "--warm-up-time", "1", "--measurement-time", "3"]),
    )?;
    let mut found = Vec::new();
    collect_criterion(&dir, &mut found)?;
    sort_criterion(&mut found);
    Ok(found)
}

/// By group, then numbers as numbers (`.../10` before `.../100`).
fn sort_criterion(found: &mut [Value]) {
    found.sort_by_key(|v| -> Vec<(String, u64)> {
        let id = v["id"].as_str().unwrap_or_default();
        id.split('/').map(|part| part.parse().map_or((part.to_string(), 0), |n| (String::new(), n))).collect()
    });
}

fn collect_criterion(dir: &Path, found: &mut Vec<Value>) -> Result<()> {
    let (bench, estimates) = (dir.join("new").join("benchmark.json"), dir.join("new").join("estimates.json"));
    if bench.is_file() && estimates.is_file() {
        let bench: Value = serde_json::from_str(&std::fs::read_to_string(&bench)?)?;
        let estimates: Value = serde_json::from_str(&std::fs::read_to_string(&estimates)?)?;
        let median = &estimates["median"];
        found.push(json!({
            "id": bench["full_id"],
            "median_ns": median["point_estimate"],
            "ci_low_ns": median["confidence_interval"]["lower_bound"],
            "ci_high_ns": median["confidence_interval"]["upper_bound"],
            "elements": bench["throughput"]["Elements"],
        }));
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() && path.file_name().is_some_and(|n| n != "report") {
            collect_criterion(&path, found)?;
        }
    }
    Ok(())
}

/// Our library throughput: the packed path at every batch size, then at batch 32 the packed
/// path on one thread and the candle-transformers path, for thread scaling and before/after.
fn throughput(options: &Options, work: &Path) -> Result<Value> {
    let repeat = options.repeat.to_string();
    let runs: [(&str, &[&str]); 3] = [
        ("packed", &["--repeat", &repeat]),
        ("packed_one_thread", &["--threads", "1", "--batch", "32", "--repeat", &repeat]),
        ("candle", &["--engine", "candle", "--batch", "32", "--repeat", &repeat]),
    ];
    let mut all = serde_json::Map::new();
    for (name, args) in runs {
        let path = work.join(format!("throughput_{name}.json"));
        let mut cargo = crate::cargo();
        if options.quick {
            // The dev build `cargo test` made; the bench runs as a smoke test there.
            cargo.args(["test", "-p", "aki-benches", "--bench", "throughput", "--", "--quick"]);
        } else {
            cargo.args(["bench", "-p", "aki-benches", "--bench", "throughput", "--"]);
        }
        crate::run(cargo.args(args).arg("--json").arg(&path))?;
        all.insert(name.to_string(), read_json(&path)?);
    }
    Ok(Value::Object(all))
}

/// sentence-transformers on the same corpora, batch sizes and thread count, in a virtual
/// environment under `target/`.
fn peer(root: &Path, options: &Options, work: &Path) -> Result<Value> {
    const PACKAGES: [&str; 2] = ["torch==2.15.0", "sentence-transformers==6.2.0"];
    let python = crate::python_venv(&root.join("target").join("peer-venv"), &PACKAGES, "import sentence_transformers")?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).to_string();
    let path = work.join("throughput_peer.json");
    let model = aki_core::paths::installed_model_dir(aki_core::paths::DEFAULT_MODEL);
    let mut script = Command::new(python);
    script
        .arg(root.join("scripts/peer_sentence_transformers.py"))
        .arg(&model)
        .arg(root.join("benches/data"))
        .arg(&threads)
        .arg(options.repeat.to_string())
        .arg(&path)
        .env("HF_HUB_OFFLINE", "1")
        .env("TOKENIZERS_PARALLELISM", "true");
    if options.quick {
        script.arg("--quick");
    }
    crate::run(&mut script)?;
    read_json(&path)
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Where the numbers came from.
fn machine(root: &Path) -> Value {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let output = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let cpuinfo = read("/proc/cpuinfo");
    let cpu =
        cpuinfo.lines().find_map(|l| l.strip_prefix("model name")).map(|l| l.trim_start_matches([' ', '\t', ':']));
    let memory_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let dirty = !output("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty();
    json!({
        "cpu": cpu.unwrap_or("unknown"),
        "avx512": cpuinfo.contains(" avx512f"),
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "memory_gib": (memory_kib as f64 / 1024.0 / 1024.0).round(),
        "kernel": output("uname", &["-sr"]),
        "rustc": output("rustc", &["--version"]),
        "commit": format!("{}{}", output("git", &["rev-parse", "--short", "HEAD"]), if dirty { " (with local changes)" } else { "" }),
        "date": output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
    })
}

/// Median, lowest and highest of `values` (NaN when empty).
fn spread(values: &[f64]) -> (f64, f64, f64) {
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

fn numbers(value: &Value) -> Vec<f64> {
    value.as_array().map(|a| a.iter().filter_map(Value::as_f64).collect()).unwrap_or_default()
}

enum Metric {
    Throughput,
    P95,
}

struct Report<'a> {
    options: &'a Options,
    machine: Value,
    criterion: Vec<Value>,
    ours: Value,
    peer: Option<Value>,
    loads: Vec<Vec<Outcome>>,
}

/// Linear-layer work per token of a BERT encoder: `2 * layers * (4 h^2 + 2 h i)` FLOPs.
fn linear_flops_per_token() -> Result<f64> {
    let config = read_json(&aki_core::paths::installed_model_dir(aki_core::paths::DEFAULT_MODEL).join("config.json"))?;
    let get = |key: &str| config[key].as_f64().with_context(|| format!("config.json has no {key}"));
    let (h, i, layers) = (get("hidden_size")?, get("intermediate_size")?, get("num_hidden_layers")?);
    Ok(2.0 * layers * (4.0 * h * h + 2.0 * h * i))
}

impl Report<'_> {
    /// The row of `engine` results for `corpus` at `batch`: (median, min, max) sentences/s.
    fn rate(runs: &Value, corpus: &str, batch: u64) -> Option<(f64, f64, f64)> {
        runs["rows"]
            .as_array()?
            .iter()
            .find(|r| r["corpus"] == corpus && r["batch"].as_u64() == Some(batch))
            .map(|r| spread(&numbers(&r["sentences_per_s"])))
    }

    fn peer_rate(&self, corpus: &str, batch: u64) -> Option<(f64, f64, f64)> {
        self.peer.as_ref().and_then(|p| Self::rate(p, corpus, batch))
    }

    /// Per load scenario (in run order): the outcomes of every round.
    fn scenarios(&self) -> Vec<Vec<&Outcome>> {
        let first = self.loads.first().map(Vec::as_slice).unwrap_or_default();
        first
            .iter()
            .map(|o| self.loads.iter().filter_map(|round| round.iter().find(|x| x.name == o.name)).collect())
            .collect()
    }

    fn load_stat(rounds: &[&Outcome], field: fn(&Outcome) -> f64) -> (f64, f64, f64) {
        spread(&rounds.iter().map(|o| field(o)).collect::<Vec<_>>())
    }

    /// Sentences/s the machine's best measured matrix multiply allows on the short corpus at
    /// batch 32 (linear layers only), with the rate used.
    fn ceiling(&self) -> Option<(f64, f64)> {
        let ours = self.ours["packed"]["sgemm_gflops"].as_f64()?;
        let theirs = self.peer.as_ref().and_then(|p| p["peer"]["sgemm_gflops"].as_f64()).unwrap_or(0.0);
        let sgemm = ours.max(theirs);
        let short = &self.ours["packed"]["corpora"]["short"];
        let tokens_per_text = short["tokens"].as_f64()? / short["texts"].as_f64()?;
        let flops = linear_flops_per_token().ok()? * tokens_per_text;
        Some((sgemm * 1e9 / flops, sgemm))
    }

    fn json(&self) -> Value {
        let loads: Vec<Value> = self
            .loads
            .iter()
            .map(|round| {
                Value::Array(
                    round
                        .iter()
                        .map(|o| {
                            json!({
                                "scenario": o.name, "connections": o.connections, "seconds": o.seconds,
                                "offered_rate": o.offered_rate, "requests_per_s": o.requests_per_s,
                                "p50_ms": o.p50_ms, "p95_ms": o.p95_ms, "p99_ms": o.p99_ms,
                                "non_2xx": o.non_2xx, "socket_errors": o.socket_errors,
                                "peak_rss_mib": o.peak_rss_mib, "cpu_cores": o.cpu_cores,
                            })
                        })
                        .collect(),
                )
            })
            .collect();
        json!({
            "machine": self.machine,
            "quick": self.options.quick,
            "repeat": self.options.repeat,
            "throughput": self.ours,
            "peer": self.peer,
            "load_rounds": loads,
            "criterion": self.criterion,
        })
    }

    fn markdown(&self) -> String {
        let mut md = String::new();
        let m = &self.machine;
        let command = format!(
            "cargo xtask bench{}{}{}",
            if self.options.quick { " --quick" } else { "" },
            if self.peer.is_some() { " --peers" } else { "" },
            format_args!(" --repeat {}", self.options.repeat)
        );
        let _ = writeln!(md, "# Benchmarks\n");
        let _ = writeln!(
            md,
            "Written by `{command}` on {} at commit {}; rerun the command rather than editing this file. \
             The same figures, every run included, are in `benchmarks.json`. Absolute numbers on shared \
             2-core machines vary by up to 30% between runs: compare within one report. Each figure is \
             the median of {} runs with the lowest and highest in brackets.\n",
            m["date"].as_str().unwrap_or("?"),
            m["commit"].as_str().unwrap_or("?"),
            self.options.repeat
        );
        if self.options.quick {
            let _ = writeln!(
                md,
                "**Smoke run** (`--quick`): a few texts and seconds per figure on the dev build, to check the \
                 harness works; its numbers mean nothing.\n"
            );
        }
        let _ = writeln!(md, "## Machine\n\n| | |\n|---|---|");
        for (label, key) in [
            ("CPU", "cpu"),
            ("cores", "cores"),
            ("memory GiB", "memory_gib"),
            ("AVX-512", "avx512"),
            ("kernel", "kernel"),
            ("rustc", "rustc"),
        ] {
            let _ = writeln!(md, "| {label} | {} |", plain(&m[key]));
        }
        if let Some(peer) = &self.peer {
            let _ = writeln!(
                md,
                "| peer | sentence-transformers 6.2.0 on PyTorch {} (CPU), {} threads |",
                plain(&peer["peer"]["torch"]),
                plain(&peer["peer"]["threads"])
            );
        }
        md.push('\n');
        self.targets(&mut md);
        self.library(&mut md);
        self.load_section(&mut md);
        self.criterion_section(&mut md);
        md
    }

    fn targets(&self, md: &mut String) {
        let _ = writeln!(md, "## Targets\n\n| target | measured | |\n|---|---|---|");
        let scenarios = self.scenarios();
        let find = |name: &str| scenarios.iter().find(|r| r.first().is_some_and(|o| o.name == name));
        let mut row = |target: &str, measured: Option<(String, bool)>| {
            let (text, status) = match measured {
                Some((text, met)) => (text, if met { "met" } else { "missed" }),
                None => ("not measured in this run".to_string(), "-"),
            };
            let _ = writeln!(md, "| {target} | {text} | {status} |");
        };
        let hundred = find("short-100");
        let stat = |field: fn(&Outcome) -> f64| hundred.map(|r| Self::load_stat(r, field).0);
        row(
            "founding plan, 100 connections: 200+ requests/s",
            stat(|o| o.requests_per_s).map(|v| (format!("{v:.0} requests/s"), v >= 200.0)),
        );
        for (label, limit, field) in [
            ("p50", 20.0, (|o: &Outcome| o.p50_ms) as fn(&Outcome) -> f64),
            ("p95", 35.0, |o: &Outcome| o.p95_ms),
            ("p99", 50.0, |o: &Outcome| o.p99_ms),
        ] {
            row(
                &format!("founding plan, 100 connections: {label} < {limit} ms"),
                stat(field).map(|v| (format!("{v:.1} ms"), v < limit)),
            );
        }
        let errors = hundred.map(|r| {
            let failed: f64 = r.iter().map(|o| (o.non_2xx + o.socket_errors) as f64).sum();
            let total: f64 = r.iter().map(|o| o.requests_per_s * f64::from(o.seconds)).sum();
            100.0 * failed / total.max(1.0)
        });
        row("founding plan: error rate < 0.1%", errors.map(|e| (format!("{e:.3}%"), e < 0.1)));
        let rss = self.loads.iter().flatten().map(|o| o.peak_rss_mib).fold(f64::NAN, f64::max);
        row(
            "founding plan: resident memory < 500 MB",
            rss.is_finite().then(|| (format!("{:.0} MB peak", rss * 1.048_576), rss * 1.048_576 < 500.0)),
        );
        let ours32 = Self::rate(&self.ours["packed"], "short", 32).map(|r| r.0);
        let ratio = |ours: Option<f64>, theirs: Option<(f64, f64, f64)>| Some((ours?, theirs?.0));
        if let Some((ours, theirs)) = ratio(ours32, self.peer_rate("short", 32)) {
            row(
                "short corpus, batch 32: 1.3x sentence-transformers",
                Some((format!("{ours:.0} vs {theirs:.0} sentences/s: {:.2}x", ours / theirs), ours >= 1.3 * theirs)),
            );
        } else {
            row("short corpus, batch 32: 1.3x sentence-transformers", None);
        }
        let ceiling = self.ceiling();
        row(
            "short corpus, batch 32: 70% of the compute ceiling",
            ours32.zip(ceiling).map(|(ours, (ceiling, sgemm))| {
                (
                    format!("{:.0}% of {ceiling:.0} sentences/s (sgemm {sgemm:.0} GFLOP/s)", 100.0 * ours / ceiling),
                    ours >= 0.7 * ceiling,
                )
            }),
        );
        let medium = ratio(Self::rate(&self.ours["packed"], "medium", 32).map(|r| r.0), self.peer_rate("medium", 32));
        row(
            "medium corpus, batch 32: 1.2x sentence-transformers",
            medium.map(|(ours, theirs)| {
                (format!("{ours:.1} vs {theirs:.1} sentences/s: {:.2}x", ours / theirs), ours >= 1.2 * theirs)
            }),
        );
        let served = ratio(stat(|o| o.requests_per_s), self.peer_rate("short", 32));
        row(
            "HTTP, 100 connections: 1.0x sentence-transformers' batch-32 rate",
            served.map(|(ours, theirs)| {
                (format!("{ours:.0} requests/s vs {theirs:.0} sentences/s: {:.2}x", ours / theirs), ours >= theirs)
            }),
        );
        let paced = find("short-100-at-100rps")
            .map(|r| (Self::load_stat(r, |o| o.p95_ms).0, Self::load_stat(r, |o| o.requests_per_s).0));
        row(
            "HTTP, 100 requests/s offered on 100 connections: p95 < 35 ms",
            paced.map(|(p95, rate)| (format!("p95 {p95:.1} ms at {rate:.0} requests/s"), p95 < 35.0)),
        );
        let one = self.ours["packed"]["rows"].as_array().and_then(|rows| {
            rows.iter().find(|r| r["corpus"] == "short" && r["batch"] == 1).and_then(|r| r["call_p50_ms"].as_f64())
        });
        row(
            "one short sentence alone: < 5 ms",
            one.map(|ms| (format!("{ms:.2} ms (median call, tokenization included)"), ms < 5.0)),
        );
        md.push('\n');
    }

    fn library(&self, md: &mut String) {
        let repeat = self.options.repeat;
        let _ = writeln!(
            md,
            "## Library throughput\n\n`cargo bench -p aki-benches --bench throughput -- --repeat {repeat}`: each corpus \
             (`benches/data/`) embedded from text in calls of the batch size (tokenization, forward pass, pooling, \
             normalisation), the whole corpus per run after a warm-up run.{} Sentences/s:\n",
            if self.peer.is_some() {
                " The peer, `scripts/peer_sentence_transformers.py`, does the same with `SentenceTransformer.encode(texts, batch_size)` in the same run, on the same number of threads."
            } else {
                " Run with `--peers` to add sentence-transformers."
            }
        );
        let _ = writeln!(
            md,
            "| corpus | batch | aki (packed) | one call p50 ms | sentence-transformers | aki / peer |\n|---|---:|---:|---:|---:|---:|"
        );
        if let Some(rows) = self.ours["packed"]["rows"].as_array() {
            for r in rows {
                let (corpus, batch) = (r["corpus"].as_str().unwrap_or("?"), r["batch"].as_u64().unwrap_or(0));
                let ours = spread(&numbers(&r["sentences_per_s"]));
                let theirs = self.peer_rate(corpus, batch);
                let _ = writeln!(
                    md,
                    "| {corpus} | {batch} | {} | {:.2} | {} | {} |",
                    triple(ours),
                    r["call_p50_ms"].as_f64().unwrap_or(f64::NAN),
                    theirs.map_or("-".into(), triple),
                    theirs.map_or("-".into(), |t| format!("{:.2}x", ours.0 / t.0))
                );
            }
        }
        let _ = writeln!(
            md,
            "\nAt batch 32, the packed path on one thread (`--threads 1`) and candle-transformers' padded BERT \
             (`--engine candle`, the path before the packed one and still the one for GPUs):\n\n\
             | corpus | packed, all cores | packed, 1 thread | thread scaling | candle-transformers | packed / candle |\n\
             |---|---:|---:|---:|---:|---:|"
        );
        for corpus in ["short", "medium"] {
            let packed = Self::rate(&self.ours["packed"], corpus, 32);
            let one = Self::rate(&self.ours["packed_one_thread"], corpus, 32);
            let candle = Self::rate(&self.ours["candle"], corpus, 32);
            let ratio = |a: Option<(f64, f64, f64)>, b: Option<(f64, f64, f64)>| {
                a.zip(b).map_or("-".into(), |(a, b)| format!("{:.2}x", a.0 / b.0))
            };
            let _ = writeln!(
                md,
                "| {corpus} | {} | {} | {} | {} | {} |",
                packed.map_or("-".into(), triple),
                one.map_or("-".into(), triple),
                ratio(packed, one),
                candle.map_or("-".into(), triple),
                ratio(packed, candle)
            );
        }
        if let Some((ceiling, sgemm)) = self.ceiling() {
            let short = &self.ours["packed"]["corpora"]["short"];
            let _ = writeln!(
                md,
                "\nCompute ceiling: the best f32 matrix multiply measured in this run (the `gemm` crate: {:.0} GFLOP/s{}) \
                 over the linear layers' work, 2 x layers x (4h^2 + 2hi) = {:.1} MFLOP per token, at {:.1} tokens per \
                 short text ({} tokens in {} texts): {ceiling:.0} sentences/s (from {sgemm:.0} GFLOP/s). Attention is not counted.",
                self.ours["packed"]["sgemm_gflops"].as_f64().unwrap_or(f64::NAN),
                self.peer
                    .as_ref()
                    .and_then(|p| p["peer"]["sgemm_gflops"].as_f64())
                    .map_or(String::new(), |g| format!("; PyTorch: {g:.0}")),
                linear_flops_per_token().unwrap_or(f64::NAN) / 1e6,
                short["tokens"].as_f64().unwrap_or(0.0) / short["texts"].as_f64().unwrap_or(1.0),
                plain(&short["tokens"]),
                plain(&short["texts"]),
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
            self.loads.len()
        );
        for rounds in self.scenarios() {
            let Some(first) = rounds.first() else { continue };
            let fmt = |field: fn(&Outcome) -> f64, digits: usize| {
                let (median, low, high) = Self::load_stat(&rounds, field);
                format!("{median:.digits$} [{low:.digits$}-{high:.digits$}]")
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                first.name,
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
        if self.criterion.is_empty() {
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
        for c in &self.criterion {
            let median = c["median_ns"].as_f64().unwrap_or(f64::NAN);
            let elements = c["elements"].as_f64();
            let _ = writeln!(
                md,
                "| {} | {} | {}-{} | {} | {} |",
                c["id"].as_str().unwrap_or("?"),
                duration(median),
                duration(c["ci_low_ns"].as_f64().unwrap_or(f64::NAN)),
                duration(c["ci_high_ns"].as_f64().unwrap_or(f64::NAN)),
                elements.map_or("-".into(), |e| duration(median / e)),
                elements.map_or("-".into(), |e| format!("{:.0}", e / (median / 1e9))),
            );
        }
        md.push('\n');
    }

    /// A line chart of the short scenarios run as fast as answered, against connections.
    fn chart(&self, metric: Metric) -> String {
        let points: Vec<(f64, f64, f64, f64)> = self
            .scenarios()
            .iter()
            .filter(|r| r.first().is_some_and(|o| o.name.starts_with("short") && o.offered_rate.is_none()))
            .map(|r| {
                let field: fn(&Outcome) -> f64 = match metric {
                    Metric::Throughput => |o| o.requests_per_s,
                    Metric::P95 => |o| o.p95_ms,
                };
                let (median, low, high) = Self::load_stat(r, field);
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

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
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
    use super::*;

    #[test]
    fn spread_is_median_lowest_highest() {
        assert_eq!(spread(&[3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(spread(&[4.0, 1.0, 2.0, 3.0]), (2.5, 1.0, 4.0));
        assert!(spread(&[]).0.is_nan());
    }

    #[test]
    fn options_parse_and_refuse_unknown_flags() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        let o = Options::parse(&args(&["--peers", "--repeat", "5"])).expect("parses");
        assert!(o.peers && !o.quick && o.repeat == 5);
        assert_eq!(Options::parse(&args(&["--quick"])).expect("parses").repeat, 1);
        assert!(Options::parse(&args(&["--repeat"])).is_err());
        assert!(Options::parse(&args(&["--fast"])).is_err());
    }

    #[test]
    fn criterion_results_are_read_and_sorted_with_numbers_as_numbers() {
        let dir = std::env::temp_dir().join(format!("aki-criterion-{}", std::process::id()));
        for (name, median) in [("100", 3.0), ("10", 1.0), ("50", 2.0)] {
            let new = dir.join("group").join(name).join("new");
            std::fs::create_dir_all(&new).expect("dir");
            let bench = json!({"full_id": format!("group/{name}"), "throughput": {"Elements": 10}});
            let ci = json!({"lower_bound": median - 0.5, "upper_bound": median + 0.5});
            let estimates = json!({"median": {"point_estimate": median, "confidence_interval": ci}});
            std::fs::write(new.join("benchmark.json"), bench.to_string()).expect("write");
            std::fs::write(new.join("estimates.json"), estimates.to_string()).expect("write");
        }
        let mut found = Vec::new();
        collect_criterion(&dir, &mut found).expect("reads");
        sort_criterion(&mut found);
        let ids: Vec<&str> = found.iter().filter_map(|v| v["id"].as_str()).collect();
        assert_eq!(ids, ["group/10", "group/50", "group/100"]);
        assert_eq!(found[2]["median_ns"], 3.0);
        assert_eq!(found[0]["elements"], 10);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
