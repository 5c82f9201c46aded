//! Reads a Hugging Face model directory: the BERT config and the sentence-transformers files.

use std::path::{Path, PathBuf};

use aki_core::{EmbedError, Pooling, Result};
use candle_transformers::models::bert::Config as BertConfig;
use serde::Deserialize;

/// Everything read from a model directory before the weights are touched.
#[derive(Debug, Clone)]
pub struct ModelLayout {
    /// The directory itself.
    pub dir: PathBuf,
    /// The encoder's hyper-parameters from `config.json`.
    pub bert: BertConfig,
    /// Pooling from `1_Pooling/config.json` (mean when the file is absent).
    pub pooling: Pooling,
    /// Whether `modules.json` lists a `Normalize` module.
    pub normalize: bool,
    /// Longest input in tokens: `max_seq_length` capped by the position table.
    pub max_seq_length: usize,
}

#[derive(Deserialize)]
struct ArchitectureProbe {
    model_type: Option<String>,
    #[serde(default)]
    architectures: Vec<String>,
}

#[derive(Deserialize)]
struct Module {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

impl ModelLayout {
    /// Reads `dir`.
    ///
    /// # Errors
    /// [`EmbedError::Load`] for a missing or unreadable `config.json`, an architecture other
    /// than BERT, an unsupported pooling mode, or a malformed sentence-transformers file.
    pub fn read(dir: &Path) -> Result<Self> {
        let config_path = dir.join("config.json");
        let probe: ArchitectureProbe = read_json(&config_path)?.ok_or_else(|| missing(&config_path))?;
        let is_bert =
            probe.model_type.as_deref() == Some("bert") || probe.architectures.iter().any(|a| a.starts_with("Bert"));
        if !is_bert {
            return Err(EmbedError::Load(format!(
                "{}: unsupported architecture (model_type {:?}, architectures {:?}); \
                 this backend serves BERT-family encoders",
                config_path.display(),
                probe.model_type,
                probe.architectures
            )));
        }
        let bert: BertConfig = read_json(&config_path)?.ok_or_else(|| missing(&config_path))?;

        let normalize = read_json::<Vec<Module>>(&dir.join("modules.json"))?
            .is_some_and(|modules| modules.iter().any(|m| m.kind.ends_with("Normalize")));
        let pooling_path = dir.join("1_Pooling").join("config.json");
        let pooling = match read_json::<PoolingConfig>(&pooling_path)? {
            None => Pooling::Mean,
            Some(p) => match (p.pooling_mode_mean_tokens, p.pooling_mode_cls_token, p.pooling_mode_max_tokens) {
                (true, false, false) => Pooling::Mean,
                (false, true, false) => Pooling::Cls,
                (false, false, true) => Pooling::Max,
                _ => {
                    return Err(EmbedError::Load(format!(
                        "{}: exactly one of mean, CLS or max pooling must be enabled",
                        pooling_path.display()
                    )));
                }
            },
        };
        let declared = read_json::<SentenceBertConfig>(&dir.join("sentence_bert_config.json"))?
            .and_then(|c| c.max_seq_length)
            .unwrap_or(bert.max_position_embeddings);
        let max_seq_length = declared.min(bert.max_position_embeddings);
        Ok(Self { dir: dir.to_path_buf(), bert, pooling, normalize, max_seq_length })
    }
}

fn missing(path: &Path) -> EmbedError {
    EmbedError::Load(format!("{} is missing", path.display()))
}

/// Parses a JSON file; `Ok(None)` when it does not exist.
fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(EmbedError::Load(format!("{}: {e}", path.display()))),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| EmbedError::Load(format!("{}: {e}", path.display())))
}
