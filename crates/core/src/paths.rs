//! Where aki-embed keeps installed models on disk, shared by the backends and `cargo xtask`.

use std::path::PathBuf;

/// The model id served when none is configured.
pub const DEFAULT_MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// The folder searched first for a model id: `$AKI_MODELS_DIR`, else
/// `$XDG_CACHE_HOME/aki-embed/models`, else `$HOME/.cache/aki-embed/models`
/// (`./.cache/aki-embed/models` when neither is set). A model `org/name` lives in
/// `<models_dir>/org/name`.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AKI_MODELS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("aki-embed").join("models")
}

/// The folder `model_id` is installed in under [`models_dir`].
pub fn installed_model_dir(model_id: &str) -> PathBuf {
    models_dir().join(model_id)
}
