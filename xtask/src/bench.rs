//! `cargo xtask bench [--quick] [--peers] [--repeat N]`: the criterion suite, the library
//! throughput bench (side by side with sentence-transformers and ONNX Runtime with `--peers`) and the load
//! scenarios, repeated for a median and a spread, written to `docs/benchmarks.md`,
//! `docs/benchmarks.json` and two SVG charts (under `target/bench-quick/` with `--quick`, a
//! smoke run of seconds that the README's test command runs). The files read and written are
//! the types of `aki-bench-report`; the rendering of the report is the `report` module.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use aki_bench_report::{CriterionResult, Machine, PaddingRow, Report, ThroughputRun};
use anyhow::Result;
use serde::Deserialize;

use crate::flags::Bench;

/// Runs everything and writes the report.
pub fn run(root: &Path, options: &Bench) -> Result<()> {
    crate::fetch_model::run()?;
    let work = root.join("target").join("bench");
    std::fs::create_dir_all(&work)?;
    let out = if options.quick { root.join("target").join("bench-quick") } else { root.join("docs") };
    std::fs::create_dir_all(&out)?;

    let criterion = if options.quick { Vec::new() } else { criterion(root)? };
    let throughput = throughput(options, &work)?;
    let padding = padding(options, &work)?;
    let mut peers = BTreeMap::new();
    if options.peers {
        peers.insert("sentence-transformers".to_string(), peer(root, options, &work, Peer::SentenceTransformers)?);
        peers.insert("onnxruntime".to_string(), peer(root, options, &work, Peer::OnnxRuntime)?);
        // A quantized export that fails (or falls below the script's floor) costs its own row only.
        match peer(root, options, &work, Peer::OnnxRuntimeInt8) {
            Ok(run) => drop(peers.insert("onnxruntime-int8".to_string(), run)),
            Err(error) => eprintln!("bench: ONNX Runtime int8 left out of the report: {error:#}"),
        }
    }
    let (mut load_rounds, mut mixed_rounds) = (Vec::new(), Vec::new());
    for round in 1..=options.rounds() {
        println!("load round {round} of {}", options.rounds());
        let measured = crate::load::run(root, options.quick, false, None)?;
        load_rounds.push(measured.scenarios);
        mixed_rounds.push(measured.mixed);
    }

    let report = Report {
        machine: machine(root),
        quick: options.quick,
        repeat: options.rounds(),
        throughput,
        peers,
        load_rounds,
        mixed_rounds,
        padding,
        criterion,
    };
    crate::report::write(root, &out, &report)?;
    println!("wrote {}", out.join("benchmarks.md").display());
    Ok(())
}

/// Runs the criterion benches and reads back each benchmark's median and confidence interval.
fn criterion(root: &Path) -> Result<Vec<CriterionResult>> {
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
fn sort_criterion(found: &mut [CriterionResult]) {
    found.sort_by_key(|c| -> Vec<(String, u64)> {
        c.id.split('/').map(|part| part.parse().map_or((part.to_string(), 0), |n| (String::new(), n))).collect()
    });
}

/// The parts of criterion's own files that the report uses.
#[derive(Deserialize)]
struct CriterionBenchmark {
    full_id: String,
    throughput: Option<CriterionThroughput>,
}

#[derive(Deserialize)]
struct CriterionThroughput {
    #[serde(rename = "Elements")]
    elements: Option<u64>,
}

#[derive(Deserialize)]
struct CriterionEstimates {
    median: CriterionEstimate,
}

#[derive(Deserialize)]
struct CriterionEstimate {
    point_estimate: f64,
    confidence_interval: CriterionInterval,
}

#[derive(Deserialize)]
struct CriterionInterval {
    lower_bound: f64,
    upper_bound: f64,
}

fn collect_criterion(dir: &Path, found: &mut Vec<CriterionResult>) -> Result<()> {
    let (bench, estimates) = (dir.join("new").join("benchmark.json"), dir.join("new").join("estimates.json"));
    if bench.is_file() && estimates.is_file() {
        let bench: CriterionBenchmark = crate::read_json(&bench)?;
        let estimates: CriterionEstimates = crate::read_json(&estimates)?;
        let median = estimates.median;
        found.push(CriterionResult {
            id: bench.full_id,
            median_ns: median.point_estimate,
            ci_low_ns: median.confidence_interval.lower_bound,
            ci_high_ns: median.confidence_interval.upper_bound,
            elements: bench.throughput.and_then(|t| t.elements),
        });
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

/// Our library throughput: the packed path in f32 and in bf16 at every batch size, int8 at
/// batches 1 and 32, f32, f16 weights and int8 capped at AVX2 at batches 1 and 32, then at
/// batch 32 f32 on one thread and the candle-transformers path, for thread scaling and
/// before/after.
fn throughput(options: &Bench, work: &Path) -> Result<BTreeMap<String, ThroughputRun>> {
    let repeat = options.rounds().to_string();
    let runs: [(&str, &[&str]); 8] = [
        ("f32", &["--dtype", "f32", "--repeat", &repeat]),
        ("bf16", &["--dtype", "bf16", "--repeat", &repeat]),
        ("int8", &["--dtype", "int8", "--batch", "1,32", "--repeat", &repeat]),
        ("avx2_f32", &["--dtype", "f32", "--isa", "avx2", "--batch", "1,32", "--repeat", &repeat]),
        ("avx2_f16", &["--dtype", "f16", "--isa", "avx2", "--batch", "1,32", "--repeat", &repeat]),
        ("avx2_int8", &["--dtype", "int8", "--isa", "avx2", "--batch", "1,32", "--repeat", &repeat]),
        ("f32_one_thread", &["--dtype", "f32", "--threads", "1", "--batch", "32", "--repeat", &repeat]),
        ("candle", &["--engine", "candle", "--batch", "32", "--repeat", &repeat]),
    ];
    let mut all = BTreeMap::new();
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
        all.insert(name.to_string(), crate::read_json(&path)?);
    }
    Ok(all)
}

/// Padding waste of the padded path under several batching settings (the `padding` bench).
fn padding(options: &Bench, work: &Path) -> Result<Vec<PaddingRow>> {
    let path = work.join("padding.json");
    let mut cargo = crate::cargo();
    if options.quick {
        cargo.args(["test", "-p", "aki-benches", "--bench", "padding", "--", "--quick"]);
    } else {
        cargo.args(["bench", "-p", "aki-benches", "--bench", "padding", "--"]);
    }
    crate::run(cargo.arg("--json").arg(&path))?;
    crate::read_json(&path)
}

/// Rewrites `crates/backend-candle/tests/tiny/` with `scripts/make_tiny_models.py` in the peer
/// venv (transformers and sentence-transformers at the pinned versions).
pub fn tiny_models(root: &Path) -> Result<()> {
    let python = peer_venv(root)?;
    crate::run(
        Command::new(python)
            .arg(root.join("scripts/make_tiny_models.py"))
            .arg(root.join("benches/data"))
            .arg(root.join("crates/backend-candle/tests/tiny")),
    )
}

fn peer_venv(root: &Path) -> Result<PathBuf> {
    crate::python_venv(
        &root.join("target").join("peer-venv"),
        &PEER_PACKAGES,
        "import sentence_transformers, onnxruntime, onnx",
    )
}

/// The peers measured with `--peers`.
#[derive(Clone, Copy)]
enum Peer {
    SentenceTransformers,
    OnnxRuntime,
    /// The same export with `quantize_dynamic`'s int8 weights.
    OnnxRuntimeInt8,
}

/// The peer venv's packages, pinned.
const PEER_PACKAGES: [&str; 5] =
    ["torch==2.15.0", "sentence-transformers==6.2.0", "onnx==1.23.2", "onnxruntime==1.32.0", "onnxscript==0.7.2"];

/// A peer on the same corpora, batch sizes and thread count, in a virtual environment under
/// `target/`: sentence-transformers, or ONNX Runtime on an export of the same weights (in f32,
/// or quantized to int8).
fn peer(root: &Path, options: &Bench, work: &Path, which: Peer) -> Result<ThroughputRun> {
    let python = peer_venv(root)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).to_string();
    let model = aki_core::paths::installed_model_dir(aki_core::paths::DEFAULT_MODEL);
    let (data, repeat) = (root.join("benches/data"), options.rounds().to_string());
    let mut script = Command::new(python);
    let path = match which {
        Peer::SentenceTransformers => {
            let path = work.join("throughput_sentence_transformers.json");
            script.arg(root.join("scripts/peer_sentence_transformers.py")).arg(&model).arg(&data).arg(&threads);
            script.arg(&repeat).arg(&path);
            path
        }
        Peer::OnnxRuntime | Peer::OnnxRuntimeInt8 => {
            let int8 = matches!(which, Peer::OnnxRuntimeInt8);
            let path = work.join(if int8 { "throughput_onnxruntime_int8.json" } else { "throughput_onnxruntime.json" });
            let fixtures = root.join("crates/backend-candle/tests/fixtures/reference.json");
            script.arg(root.join("scripts/peer_onnxruntime.py")).arg(&model).arg(&data).arg(fixtures).arg(&threads);
            script.arg(&repeat).arg(work).arg(&path);
            if int8 {
                script.arg("--int8");
            }
            path
        }
    };
    script.env("HF_HUB_OFFLINE", "1").env("TOKENIZERS_PARALLELISM", "true");
    if options.quick {
        script.arg("--quick");
    }
    crate::run(&mut script)?;
    crate::read_json(&path)
}

/// Where the numbers came from.
fn machine(root: &Path) -> Machine {
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
    let flags: Vec<&str> = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags"))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    let isa = ["avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16"]
        .into_iter()
        .filter(|f| flags.contains(f))
        .map(str::to_string)
        .collect();
    let memory_kib: f64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let dirty = !output("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty();
    Machine {
        cpu: cpu.unwrap_or("unknown").to_string(),
        isa,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_gib: (memory_kib / 1024.0 / 1024.0).round(),
        kernel: output("uname", &["-sr"]),
        rustc: output("rustc", &["--version"]),
        commit: format!(
            "{}{}",
            output("git", &["rev-parse", "--short", "HEAD"]),
            if dirty { " (with local changes)" } else { "" }
        ),
        date: output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criterion_results_are_read_and_sorted_with_numbers_as_numbers() {
        let dir = std::env::temp_dir().join(format!("aki-criterion-{}", std::process::id()));
        for (name, median) in [("100", 3.0), ("10", 1.0), ("50", 2.0)] {
            let new = dir.join("group").join(name).join("new");
            std::fs::create_dir_all(&new).expect("dir");
            let bench = serde_json::json!({"full_id": format!("group/{name}"), "throughput": {"Elements": 10}});
            let ci = serde_json::json!({"lower_bound": median - 0.5, "upper_bound": median + 0.5});
            let estimates = serde_json::json!({"median": {"point_estimate": median, "confidence_interval": ci}});
            std::fs::write(new.join("benchmark.json"), bench.to_string()).expect("write");
            std::fs::write(new.join("estimates.json"), estimates.to_string()).expect("write");
        }
        let mut found = Vec::new();
        collect_criterion(&dir, &mut found).expect("reads");
        sort_criterion(&mut found);
        let ids: Vec<&str> = found.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["group/10", "group/50", "group/100"]);
        assert_eq!(found[2].median_ns, 3.0);
        assert_eq!(found[0].elements, Some(10));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
