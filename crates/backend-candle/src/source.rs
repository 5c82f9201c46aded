//! Finds a model's files: a local directory, an installed copy, or the Hugging Face hub.

use std::path::{Path, PathBuf};

use aki_core::{EmbedError, Result, paths};
use hf_hub::{Cache, Repo, RepoType, api::sync::ApiBuilder};

/// Files every model needs.
const REQUIRED: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];
/// sentence-transformers files read when present.
const OPTIONAL: [&str; 3] = ["modules.json", "sentence_bert_config.json", "1_Pooling/config.json"];

/// Resolves `model` to a directory holding its files.
///
/// Order: `model` as an existing directory; then the installed copy under
/// [`paths::models_dir`] (what `cargo xtask fetch-model` writes), unless a revision other than
/// `main` is asked for; then the Hugging Face hub
/// through hf-hub at `revision` (default `main`), which honours `HF_HOME` and `HF_ENDPOINT`;
/// with `HF_HUB_OFFLINE=1` only the hub's local cache is read.
///
/// # Errors
/// [`EmbedError::Load`] naming the model and what to do when none of these has it.
pub fn resolve(model: &str, revision: Option<&str>) -> Result<PathBuf> {
    let as_path = Path::new(model);
    if as_path.is_dir() {
        return Ok(as_path.to_path_buf());
    }
    let installed = paths::installed_model_dir(model);
    // The installed copy is the default revision; an explicit other revision goes to the hub.
    let default_revision = revision.is_none_or(|r| r == "main");
    if default_revision && installed.join("config.json").is_file() {
        return Ok(installed);
    }
    let revision = revision.unwrap_or("main").to_string();
    let repo = Repo::with_revision(model.to_string(), RepoType::Model, revision);
    let offline = std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    let fetched = if offline { from_hub_cache(&repo) } else { from_hub(&repo) };
    fetched.map_err(|cause| {
        EmbedError::Load(format!(
            "model `{model}` is neither a directory nor installed in {} and could not be \
             fetched from the Hugging Face hub ({cause}); run `cargo xtask fetch-model` to \
             install the default model, or pass a local model directory",
            installed.display()
        ))
    })
}

fn from_hub_cache(repo: &Repo) -> Result<PathBuf, String> {
    let cache = Cache::from_env().repo(repo.clone());
    let mut config = None;
    for file in REQUIRED {
        let path = cache.get(file).ok_or_else(|| format!("offline, and `{file}` is not in the hub cache"))?;
        config.get_or_insert(path);
    }
    snapshot_dir(config)
}

fn from_hub(repo: &Repo) -> Result<PathBuf, String> {
    let api = ApiBuilder::from_env().with_progress(false).build().map_err(|e| e.to_string())?;
    let api = api.repo(repo.clone());
    let mut config = None;
    for file in REQUIRED {
        tracing::info!(file, "fetching from the Hugging Face hub");
        let path = api.get(file).map_err(|e| format!("`{file}`: {e}"))?;
        config.get_or_insert(path);
    }
    for file in OPTIONAL {
        if let Err(error) = api.get(file) {
            tracing::debug!(file, %error, "optional file not fetched");
        }
    }
    snapshot_dir(config)
}

/// The hub cache keeps one snapshot folder per revision; `config.json` sits at its top.
fn snapshot_dir(config: Option<PathBuf>) -> Result<PathBuf, String> {
    config.as_deref().and_then(Path::parent).map(Path::to_path_buf).ok_or_else(|| "no snapshot folder".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_directory_is_used_as_is() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_str().expect("utf-8 path");
        assert_eq!(resolve(path, None).expect("resolves"), dir.path());
    }

    #[test]
    fn an_unknown_model_offline_is_a_load_error_that_says_what_to_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = temp_env(&[("HF_HUB_OFFLINE", "1"), ("HF_HOME", dir.path().to_str().expect("utf-8"))], || {
            resolve("no-such-org/no-such-model", None)
        })
        .expect_err("must fail");
        let text = err.to_string();
        assert!(matches!(err, EmbedError::Load(_)));
        assert!(text.contains("no-such-org/no-such-model") && text.contains("cargo xtask fetch-model"), "{text}");
    }

    #[test]
    fn an_explicit_revision_skips_the_installed_copy() {
        let models = tempfile::tempdir().expect("tempdir");
        let hub = tempfile::tempdir().expect("tempdir");
        let installed = models.path().join("org/model");
        std::fs::create_dir_all(&installed).expect("mkdir");
        std::fs::write(installed.join("config.json"), "{}").expect("write");
        let vars = [
            ("AKI_MODELS_DIR", models.path().to_str().expect("utf-8")),
            ("HF_HUB_OFFLINE", "1"),
            ("HF_HOME", hub.path().to_str().expect("utf-8")),
        ];
        temp_env(&vars, || {
            assert_eq!(resolve("org/model", None).expect("installed"), installed);
            assert_eq!(resolve("org/model", Some("main")).expect("installed"), installed);
            let err = resolve("org/model", Some("v2")).expect_err("v2 is not installed");
            assert!(matches!(err, EmbedError::Load(_)), "{err}");
        });
    }

    /// Runs `f` with environment variables set (tests touching the environment are serialised).
    fn temp_env<T>(vars: &[(&str, &str)], f: impl FnOnce() -> T) -> T {
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let old: Vec<_> = vars.iter().map(|(k, _)| (*k, std::env::var_os(k))).collect();
        for (k, v) in vars {
            set_var(k, Some(v.as_ref()));
        }
        let out = f();
        for (k, v) in old {
            set_var(k, v.as_deref());
        }
        out
    }

    #[allow(unsafe_code)]
    fn set_var(key: &str, value: Option<&std::ffi::OsStr>) {
        // SAFETY: only called under `temp_env`'s lock; no other test thread reads these keys.
        unsafe {
            match value {
                Some(v) => std::env::set_var(key, v),
                None => std::env::remove_var(key),
            }
        }
    }
}
