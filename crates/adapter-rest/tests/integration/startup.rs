//! Start-up of the real binary: a missing model directory, corrupt weights and an unsupported
//! architecture end the process with exit code 1, a message saying what failed, and the cause
//! in the log; `--print-config`
//! prints the configuration in force and exits.

use std::process::Command;
use std::time::Duration;

use crate::support::model_dir;

/// Runs `aki-rest` until it exits (it must, within a minute); returns its exit code and stderr.
fn run(model: &str) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aki-rest"))
        .args(["--port", "0", "--model", model, "--device", "cpu"])
        .env("HF_HUB_OFFLINE", "1")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start aki-rest");
    for _ in 0..600 {
        if child.try_wait().expect("poll").is_some() {
            let output = child.wait_with_output().expect("output");
            return (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("aki-rest kept running with a model that cannot load");
}

#[test]
fn a_missing_model_directory_ends_start_up_with_a_message() {
    let missing = tempfile::tempdir().expect("tempdir").path().join("no-such-model");
    let (code, stderr) = run(&missing.to_string_lossy());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("aki-rest: loading the default model") && stderr.contains("could not be loaded"),
        "{stderr}"
    );
    assert!(stderr.contains("is neither a directory nor installed"), "the log keeps the cause: {stderr}");
}

#[test]
fn corrupt_weights_end_start_up_with_a_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let real = std::path::PathBuf::from(model_dir());
    for file in ["config.json", "tokenizer.json", "modules.json", "sentence_bert_config.json"] {
        std::fs::copy(real.join(file), dir.path().join(file)).expect("copy");
    }
    std::fs::write(dir.path().join("model.safetensors"), b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
        .expect("write");
    let (code, stderr) = run(&dir.path().to_string_lossy());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("could not be loaded"), "{stderr}");
    assert!(stderr.contains("model.safetensors"), "the log names the bad file: {stderr}");
}

#[test]
fn an_unsupported_architecture_ends_start_up_naming_it_and_the_supported_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let real = std::path::PathBuf::from(model_dir());
    for file in ["tokenizer.json", "model.safetensors"] {
        std::fs::copy(real.join(file), dir.path().join(file)).expect("copy");
    }
    let t5 = r#"{"model_type": "t5", "architectures": ["T5EncoderModel"], "hidden_size": 384, "vocab_size": 30522}"#;
    std::fs::write(dir.path().join("config.json"), t5).expect("write");
    let (code, stderr) = run(&dir.path().to_string_lossy());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("unsupported architecture (model_type t5"), "{stderr}");
    assert!(stderr.contains("supported: bert, xlm-roberta, roberta, modernbert, qwen3"), "{stderr}");
}

#[test]
fn print_config_shows_the_gpu_defaults_for_cuda_even_without_a_gpu() {
    let output = Command::new(env!("CARGO_BIN_EXE_aki-rest"))
        .args(["--print-config", "--device", "cuda"])
        .output()
        .expect("run aki-rest --print-config");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let toml = String::from_utf8_lossy(&output.stdout);
    for line in ["dtype = \"f16\"", "max_batch_size = 128", "max_batch_tokens = 16384", "max_concurrent_batches = 2"] {
        assert!(toml.contains(line), "{line} missing from:\n{toml}");
    }
    let cpu =
        Command::new(env!("CARGO_BIN_EXE_aki-rest")).args(["--print-config", "--device", "cpu"]).output().expect("run");
    assert!(String::from_utf8_lossy(&cpu.stdout).contains("max_batch_size = 32"));
}

#[test]
fn help_opens_with_what_the_binary_is() {
    let output = Command::new(env!("CARGO_BIN_EXE_aki-rest")).arg("--help").output().expect("run aki-rest --help");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.starts_with(env!("CARGO_PKG_DESCRIPTION")), "{help}");
    assert!(help.starts_with("aki-embed's REST server"), "{help}");
}
