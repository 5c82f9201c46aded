//! `cargo xtask`: set-up and automation for aki-embed. The commands and their flags are declared
//! once, in `flags.rs`; `cargo xtask help` prints the help generated from them.

mod bench;
mod cluster;
mod cuda;
mod deploy;
mod fetch_model;
mod flags;
mod interop;
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
        XtaskCmd::Interop => interop::run(&root),
        XtaskCmd::Load(flags::Load { quick, mixed, server }) => {
            load::run(&root, quick, mixed, server.as_deref()).map(drop)
        }
        XtaskCmd::CheckDeploy => deploy::check_manifests(&root),
        XtaskCmd::Image(flags::Image { test }) => deploy::image(&root, test),
        XtaskCmd::Cluster => cluster::run(&root),
        XtaskCmd::Soak(flags::Soak { minutes }) => soak::run(&root, minutes),
        XtaskCmd::SlowClients => slow::run(&root),
        XtaskCmd::Bench(options) => bench::run(&root, &options),
        XtaskCmd::Report => report::rerender(&root, &root.join("docs")),
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

/// A JSON file read into `T`, its path named in any error.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
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
    interop::run(&workspace_root())?;
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
