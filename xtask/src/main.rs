//! `cargo xtask`: set-up and automation for aki-embed. The commands and their flags are declared
//! once, in `flags.rs`; `cargo xtask help` prints the help generated from them.

mod bench;
mod cluster;
mod cuda;
mod deploy;
mod fetch_model;
mod flags;
mod load;
mod mixed;
mod report;
mod server;
mod slow;
mod soak;
mod tidy;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{CommandFactory, Parser};
use flags::XtaskCmd;

fn main() -> Result<()> {
    let root = workspace_root();
    let Some(command) = flags::Xtask::parse().command else {
        return Ok(flags::Xtask::command().print_help()?);
    };
    match command {
        XtaskCmd::FetchModel => fetch_model::run(),
        XtaskCmd::Serve(flags::Serve { args }) => serve(&args),
        XtaskCmd::Test(flags::Test { args }) => test(&args),
        XtaskCmd::Interop => interop(),
        XtaskCmd::Load(flags::Load { quick, mixed, server }) => {
            load::run(&root, quick, mixed, server.as_deref()).map(drop)
        }
        XtaskCmd::CheckDeploy => deploy::check_manifests(&root),
        XtaskCmd::Image(flags::Image { test }) => deploy::image(&root, test),
        XtaskCmd::Cluster => cluster::run(&root),
        XtaskCmd::Soak(flags::Soak { minutes }) => soak::run(&root, minutes),
        XtaskCmd::SlowClients => slow::run(&root),
        XtaskCmd::Bench(options) => bench::run(&root, &options),
        XtaskCmd::BuildCuda(flags::BuildCuda { compute_cap }) => cuda::run(&root, &compute_cap),
        XtaskCmd::TinyModels => bench::tiny_models(&root),
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string()))
}

pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default()
}

/// `cargo xtask test [ARGS]`: the README's test command. Installs the model first, so it
/// passes on a fresh machine; extra arguments go to `cargo test`. Then runs `interop` and
/// `bench --quick` (which includes `load --quick`).
fn test(extra: &[String]) -> Result<()> {
    fetch_model::run()?;
    run(cargo().args(["test", "--workspace", "--all-targets"]).args(extra))?;
    deploy::check_manifests(&workspace_root())?;
    interop()?;
    // Smoke runs of the benchmark and load harnesses and of the GPU check, so they cannot rot.
    bench::run(&workspace_root(), &flags::Bench { quick: true, peers: false, repeat: Some(1) })?;
    gpu_check_dry_run()
}

/// `scripts/gpu-check.sh` with `--device cpu` on the test build: every step of the GPU check
/// but the GPU, a second each.
fn gpu_check_dry_run() -> Result<()> {
    let root = workspace_root();
    load::ensure_wrk()?;
    let model = aki_core::paths::installed_model_dir(aki_core::paths::DEFAULT_MODEL);
    run(Command::new("bash")
        .arg(root.join("scripts/gpu-check.sh"))
        .arg(root.join("target/debug/aki-rest"))
        .arg(model)
        .arg("wrk")
        .args(["--device", "cpu", "--seconds", "1"]))
}

/// `cargo xtask serve [ARGS]`: installs the model if needed and runs the release server.
fn serve(extra: &[String]) -> Result<()> {
    fetch_model::run()?;
    run(cargo().args(["run", "--release", "-p", "aki-rest", "--"]).args(extra))
}

/// `cargo xtask interop`: starts `aki-rest` and `aki-grpc` (debug builds) on free ports with
/// the installed model and runs real clients against them, in a virtual environment created
/// under `target/`: `scripts/interop_rest.py` (the `openai` package, `huggingface_hub`'s
/// `InferenceClient` and curl) and `scripts/interop_grpc.py` (`grpcio` stubs generated from the
/// repository's .proto files, `aki.embed.v1` and TEI's `tei.v1`); then `aki-rest` with a
/// cross-encoder and `scripts/interop_rerank.py` (Cohere's SDK and `InferenceClient`).
fn interop() -> Result<()> {
    let root = workspace_root();
    // The same build `cargo test` makes (same features), so nothing is compiled twice.
    run(cargo().args(["test", "--workspace", "--all-targets", "--no-run"]))?;
    let python = python_venv(
        &root.join("target").join("interop-venv"),
        &CLIENTS,
        "import openai, huggingface_hub, numpy, grpc, grpc_tools, grpc_health, grpc_reflection, cohere",
    )?;
    let model = aki_core::paths::installed_model_dir(aki_core::paths::DEFAULT_MODEL).to_string_lossy().into_owned();
    let fixtures = root.join("crates/backend-candle/tests/fixtures/reference.json");
    let args = ["--model", model.as_str(), "--device", "cpu"];

    let rest = server::Server::start(&root.join("target/debug/aki-rest"), &args, "/ready")?;
    let checked = run(Command::new(&python).arg(root.join("scripts/interop_rest.py")).arg(rest.url()).arg(&fixtures));
    let stopped = rest.stop()?;
    checked?;
    if !stopped.success() {
        bail!("aki-rest did not exit cleanly after SIGTERM: {stopped}");
    }

    let metrics_port = server::free_port()?.to_string();
    let grpc_args = [&args[..], &["--metrics-port", metrics_port.as_str()]].concat();
    let grpc = server::Server::start_probing(&root.join("target/debug/aki-grpc"), &grpc_args, metrics_port.parse()?)?;
    let checked = run(Command::new(&python)
        .arg(root.join("scripts/interop_grpc.py"))
        .arg(format!("127.0.0.1:{}", grpc.port))
        .arg(root.join("crates/adapter-grpc/proto"))
        .arg(&fixtures));
    let stopped = grpc.stop()?;
    checked?;
    if !stopped.success() {
        bail!("aki-grpc did not exit cleanly after SIGTERM: {stopped}");
    }
    // A cross-encoder (the tiny one of the family tests) for the rerank clients.
    let reranker = root.join("crates/backend-candle/tests/tiny/bert-reranker").to_string_lossy().into_owned();
    let rest = server::Server::start(
        &root.join("target/debug/aki-rest"),
        &["--model", reranker.as_str(), "--device", "cpu"],
        "/ready",
    )?;
    let checked = run(Command::new(&python).arg(root.join("scripts/interop_rerank.py")).arg(rest.url()).arg(&reranker));
    let stopped = rest.stop()?;
    checked?;
    if !stopped.success() {
        bail!("aki-rest (reranker) did not exit cleanly after SIGTERM: {stopped}");
    }
    println!("interop: every server stopped cleanly on SIGTERM");
    Ok(())
}

/// The interoperability clients, pinned.
const CLIENTS: [&str; 8] = [
    "openai==3.57.0",
    "huggingface_hub==2.4.0",
    "numpy==2.4.6",
    "cohere==7.3.1",
    "grpcio==1.85.1",
    "grpcio-tools==1.85.1",
    "grpcio-health-checking==1.85.1",
    "grpcio-reflection==1.85.1",
];

/// A virtual environment with `packages`, created once (`probe` is Python code that succeeds
/// once they are installed).
pub(crate) fn python_venv(venv: &std::path::Path, packages: &[&str], probe: &str) -> Result<PathBuf> {
    let python = venv.join("bin").join("python");
    let ready = python.is_file()
        && Command::new(&python)
            .args(["-c", probe])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !ready {
        println!("creating {} with {}", venv.display(), packages.join(" "));
        run(Command::new("python3").args(["-m", "venv"]).arg(venv))?;
        run(Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
            .args(packages))?;
    }
    Ok(python)
}
