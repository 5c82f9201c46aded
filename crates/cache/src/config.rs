//! Configuration sections owned by `aki-cache`: the model store and the result cache.

use aki_core::paths::DEFAULT_MODEL;
use serde::{Deserialize, Serialize};

/// Which models may be served, and how many stay loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelStoreConfig {
    /// The model served when a request names none; always allowed. Not a key of this
    /// section: servers set it from their top-level `model`.
    #[serde(skip)]
    pub default_model: String,
    /// Further model ids or local directories requests may name. Nothing else is loadable,
    /// so a request can never make the server read an arbitrary path.
    pub models: Vec<String>,
    /// Keep the default model loaded whatever the bounds below say.
    pub pin_default: bool,
    /// Upper bound on the weights of the loaded (unpinned) models, in bytes.
    pub max_weight_bytes: u64,
    /// Unload an unpinned model unused for this many seconds; 0 keeps it.
    pub time_to_idle_secs: u64,
}

impl Default for ModelStoreConfig {
    fn default() -> Self {
        Self {
            default_model: DEFAULT_MODEL.to_string(),
            models: Vec::new(),
            pin_default: true,
            max_weight_bytes: 4 << 30,
            time_to_idle_secs: 0,
        }
    }
}

impl ModelStoreConfig {
    /// Whether requests may name `model_id`.
    pub fn allows(&self, model_id: &str) -> bool {
        model_id == self.default_model || self.models.iter().any(|m| m == model_id)
    }

    /// Every model requests may name, the default first.
    pub fn allowed(&self) -> Vec<String> {
        std::iter::once(self.default_model.clone())
            .chain(self.models.iter().filter(|m| **m != self.default_model).cloned())
            .collect()
    }
}

/// Bound of the result cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ResultCacheConfig {
    /// Bytes of vectors and texts kept; 0 (the default) turns the cache off.
    pub max_bytes: u64,
}
