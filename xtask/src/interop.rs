//! `cargo xtask interop`: starts `aki-rest` and `aki-grpc` (debug builds) on free ports and runs
//! real clients against them, in a virtual environment created under `target/`:
//! - on the installed model, `scripts/interop_rest.py` (the `openai` package, `huggingface_hub`'s
//!   `InferenceClient` and curl) and `scripts/interop_grpc.py` (`grpcio` stubs generated from the
//!   repository's .proto files, `aki.embed.v1` and TEI's `tei.v1`);
//! - on the tiny cross-encoder, `scripts/interop_rerank.py` (Cohere's SDK and `InferenceClient`);
//! - on the tiny SPLADE model, three-label classifier and cross-encoder,
//!   `scripts/interop_tei_models.py` (`tei.v1` stubs, and `InferenceClient` for the classifier).
//!
//! Every server must then stop cleanly on SIGTERM.

use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail};

use crate::server::{self, Server};

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

/// Runs every client against its servers.
pub fn run(root: &Path) -> Result<()> {
    // The same build `cargo test` makes (same features), so nothing is compiled twice.
    crate::run(crate::cargo().args(["test", "--workspace", "--all-targets", "--no-run"]))?;
    let python = crate::python_venv(
        &root.join("target").join("interop-venv"),
        &CLIENTS,
        "import openai, huggingface_hub, numpy, grpc, grpc_tools, grpc_health, grpc_reflection, cohere",
    )?;
    let script = |name: &str| {
        let mut command = Command::new(&python);
        command.arg(root.join("scripts").join(name));
        command
    };
    let model = aki_core::paths::installed_model_dir(aki_core::paths::DEFAULT_MODEL);
    let fixtures = root.join("crates/backend-candle/tests/fixtures/reference.json");
    let proto = root.join("crates/adapter-grpc/proto");

    let server = rest(root, &model)?;
    let url = server.url();
    checked(vec![server], script("interop_rest.py").arg(url).arg(&fixtures))?;
    let server = grpc(root, &model)?;
    let target = format!("127.0.0.1:{}", server.port);
    checked(vec![server], script("interop_grpc.py").arg(target).arg(&proto).arg(&fixtures))?;

    let tiny = |name: &str| root.join("crates/backend-candle/tests/tiny").join(name);
    let server = rest(root, &tiny("bert-reranker"))?;
    let url = server.url();
    checked(vec![server], script("interop_rerank.py").arg(url).arg(tiny("bert-reranker")))?;
    for name in ["bert-splade", "xlm-roberta-classifier", "bert-reranker"] {
        let servers = vec![rest(root, &tiny(name))?, grpc(root, &tiny(name))?];
        let (url, target) = (servers[0].url(), format!("127.0.0.1:{}", servers[1].port));
        checked(servers, script("interop_tei_models.py").arg(target).arg(&proto).arg(tiny(name)).arg(url))?;
    }
    println!("interop: every server stopped cleanly on SIGTERM");
    Ok(())
}

fn model_args(model: &Path) -> Vec<String> {
    vec!["--model".into(), model.to_string_lossy().into_owned(), "--device".into(), "cpu".into()]
}

fn rest(root: &Path, model: &Path) -> Result<Server> {
    let args = model_args(model);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&root.join("target/debug/aki-rest"), &args, "/ready")
}

fn grpc(root: &Path, model: &Path) -> Result<Server> {
    let metrics_port = server::free_port()?;
    let mut args = model_args(model);
    args.extend(["--metrics-port".into(), metrics_port.to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_probing(&root.join("target/debug/aki-grpc"), &args, metrics_port)
}

/// Runs `client`, then stops `servers` with SIGTERM: the client must pass and each server
/// exit cleanly.
fn checked(servers: Vec<Server>, client: &mut Command) -> Result<()> {
    let outcome = crate::run(client);
    for server in servers {
        let port = server.port;
        let stopped = server.stop()?;
        if !stopped.success() {
            bail!("the server on port {port} did not exit cleanly after SIGTERM: {stopped}");
        }
    }
    outcome
}
