//! Reads a Hugging Face model directory: which architecture `config.json` names, and the
//! sentence-transformers files (pooling, normalisation, maximum length, prompts).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aki_core::{EmbedError, ModelTask, Pooling, Prompts, Result};
use serde::Deserialize;

/// The model families the backend runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// BERT and its sentence-transformers descendants (all-MiniLM, BGE, E5-v2).
    Bert,
    /// XLM-RoBERTa and RoBERTa: BERT layers, positions counted from the padding index.
    XlmRoberta,
    /// ModernBERT: rotary positions, alternating local and global attention, GeGLU.
    ModernBert,
    /// Qwen3 decoders used as embedders (Qwen3-Embedding): causal attention, last-token pooling.
    Qwen3,
}

impl Architecture {
    /// Every supported family as `model_type` names it, for error messages.
    pub const SUPPORTED: &str = "bert, xlm-roberta, roberta, modernbert, qwen3";

    /// The name `/info` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bert => "bert",
            Self::XlmRoberta => "xlm-roberta",
            Self::ModernBert => "modernbert",
            Self::Qwen3 => "qwen3",
        }
    }

    fn from_config(probe: &ArchitectureProbe) -> Option<Self> {
        let by_type = match probe.model_type.as_deref() {
            Some("bert") => Some(Self::Bert),
            Some("xlm-roberta" | "roberta") => Some(Self::XlmRoberta),
            Some("modernbert") => Some(Self::ModernBert),
            Some("qwen3") => Some(Self::Qwen3),
            _ => None,
        };
        by_type.or_else(|| {
            probe.architectures.iter().find_map(|a| {
                let a = a.as_str();
                if a.starts_with("Bert") {
                    Some(Self::Bert)
                } else if a.starts_with("XLMRoberta") || a.starts_with("Roberta") {
                    Some(Self::XlmRoberta)
                } else if a.starts_with("ModernBert") {
                    Some(Self::ModernBert)
                } else if a.starts_with("Qwen3") {
                    Some(Self::Qwen3)
                } else {
                    None
                }
            })
        })
    }
}

/// Everything read from a model directory before the weights are touched.
#[derive(Debug, Clone)]
pub struct ModelLayout {
    /// The directory itself.
    pub dir: PathBuf,
    /// The model family.
    pub architecture: Architecture,
    /// `config.json` as read, for the family's own hyper-parameters.
    pub config: serde_json::Value,
    /// Embedder, or reranker (a `*ForSequenceClassification` architecture).
    pub task: ModelTask,
    /// Classifier outputs, by name (`id2label`, `LABEL_i` where it names none; one output,
    /// a reranker's relevance, when it has none).
    pub labels: Vec<String>,
    /// Whether the labels are independent (`problem_type: multi_label_classification`).
    pub multi_label: bool,
    /// Width of the token vectors.
    pub hidden_size: usize,
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
    /// Pooling from `1_Pooling/config.json` (mean when the file is absent, CLS for rerankers,
    /// SPLADE for `*ForMaskedLM` models).
    pub pooling: Pooling,
    /// Whether `modules.json` lists a `Normalize` module.
    pub normalize: bool,
    /// Longest input in tokens: `max_seq_length` (or the tokenizer's `model_max_length`) capped
    /// by what the positions allow.
    pub max_seq_length: usize,
    /// Named prompts and the default one from `config_sentence_transformers.json`.
    pub prompts: Prompts,
}

#[derive(Deserialize)]
struct ArchitectureProbe {
    model_type: Option<String>,
    #[serde(default)]
    architectures: Vec<String>,
    hidden_size: usize,
    vocab_size: usize,
    max_position_embeddings: Option<usize>,
    pad_token_id: Option<usize>,
    id2label: Option<BTreeMap<String, String>>,
    problem_type: Option<String>,
}

#[derive(Deserialize)]
struct Module {
    #[serde(rename = "type")]
    kind: String,
}

/// `1_Pooling/config.json` in either of its shapes: the flags of sentence-transformers 2-5
/// (`pooling_mode_mean_tokens`) or the one `pooling_mode` name of later versions.
#[derive(Deserialize)]
struct PoolingConfig {
    pooling_mode: Option<String>,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
    #[serde(default = "yes")]
    include_prompt: bool,
}

fn yes() -> bool {
    true
}

/// `1_SpladePooling/config.json` of a sentence-transformers `SparseEncoder`.
#[derive(Deserialize)]
struct SpladeConfig {
    #[serde(default = "max")]
    pooling_strategy: String,
    #[serde(default = "relu")]
    activation_function: String,
}

fn max() -> String {
    "max".into()
}

fn relu() -> String {
    "relu".into()
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

#[derive(Deserialize)]
struct TokenizerConfig {
    model_max_length: Option<f64>,
}

#[derive(Deserialize, Default)]
struct SentenceTransformersConfig {
    #[serde(default)]
    prompts: BTreeMap<String, String>,
    default_prompt_name: Option<String>,
}

impl ModelLayout {
    /// Reads `dir`.
    ///
    /// # Errors
    /// [`EmbedError::Load`] for a missing or unreadable `config.json`, an architecture the
    /// backend does not run (the message names it and the supported ones), an unsupported
    /// pooling mode, or a malformed sentence-transformers file.
    pub fn read(dir: &Path) -> Result<Self> {
        let config_path = dir.join("config.json");
        let config: serde_json::Value = read_json(&config_path)?.ok_or_else(|| missing(&config_path))?;
        let probe = ArchitectureProbe::deserialize(&config)
            .map_err(|e| EmbedError::Load(format!("{}: {e}", config_path.display())))?;
        let architecture = Architecture::from_config(&probe).ok_or_else(|| {
            EmbedError::Load(format!(
                "{}: unsupported architecture (model_type {}, architectures {:?}); supported: {}",
                config_path.display(),
                probe.model_type.as_deref().unwrap_or("unset"),
                probe.architectures,
                Architecture::SUPPORTED
            ))
        })?;
        let reranker = probe.architectures.iter().any(|a| a.ends_with("ForSequenceClassification"));
        let task = if reranker { ModelTask::Rerank } else { ModelTask::Embed };
        if reranker && !matches!(architecture, Architecture::Bert | Architecture::XlmRoberta) {
            return Err(EmbedError::Load(format!(
                "{}: {} cross-encoders are not supported; rerankers run on bert and xlm-roberta",
                config_path.display(),
                architecture.as_str()
            )));
        }

        let masked_lm = probe.architectures.iter().any(|a| a.ends_with("ForMaskedLM"));
        if masked_lm && !matches!(architecture, Architecture::Bert | Architecture::XlmRoberta) {
            return Err(EmbedError::Load(format!(
                "{}: {} SPLADE models are not supported; SPLADE runs on bert and xlm-roberta",
                config_path.display(),
                architecture.as_str()
            )));
        }
        let normalize = !reranker
            && read_json::<Vec<Module>>(&dir.join("modules.json"))?
                .is_some_and(|modules| modules.iter().any(|m| m.kind.ends_with("Normalize")));
        let pooling = if reranker {
            Pooling::Cls
        } else if masked_lm {
            read_splade(dir)?
        } else {
            read_pooling(dir, architecture)?
        };

        // Positions an input may use: XLM-RoBERTa counts them from the padding index + 1.
        let positions = probe.max_position_embeddings.map(|max| match architecture {
            Architecture::XlmRoberta => max.saturating_sub(probe.pad_token_id.unwrap_or(1) + 1),
            _ => max,
        });
        let declared = read_json::<SentenceBertConfig>(&dir.join("sentence_bert_config.json"))?
            .and_then(|c| c.max_seq_length)
            .or_else(|| tokenizer_max_length(dir))
            .or(positions)
            .unwrap_or(512);
        let max_seq_length = positions.map_or(declared, |p| declared.min(p));

        let st = read_json::<SentenceTransformersConfig>(&dir.join("config_sentence_transformers.json"))?
            .unwrap_or_default();
        if let Some(name) = st.default_prompt_name.as_deref().filter(|n| !st.prompts.contains_key(*n)) {
            return Err(EmbedError::Load(format!(
                "{}: default_prompt_name `{name}` is not one of its prompts",
                dir.join("config_sentence_transformers.json").display()
            )));
        }
        let outputs = probe.id2label.as_ref().map_or(1, |labels| labels.len().max(1));
        let labels = (0..outputs)
            .map(|i| {
                let named = probe.id2label.as_ref().and_then(|names| names.get(&i.to_string()));
                named.cloned().unwrap_or_else(|| format!("LABEL_{i}"))
            })
            .collect();
        Ok(Self {
            dir: dir.to_path_buf(),
            architecture,
            config,
            task,
            labels,
            multi_label: probe.problem_type.as_deref() == Some("multi_label_classification"),
            hidden_size: probe.hidden_size,
            vocab_size: probe.vocab_size,
            pooling,
            normalize,
            max_seq_length,
            prompts: Prompts { named: st.prompts, default_name: st.default_prompt_name },
        })
    }

    /// The family's hyper-parameters parsed from `config.json` as `T`.
    ///
    /// # Errors
    /// [`EmbedError::Load`] naming the file and the missing or malformed key.
    pub fn family_config<T: for<'de> Deserialize<'de>>(&self) -> Result<T> {
        T::deserialize(&self.config)
            .map_err(|e| EmbedError::Load(format!("{}: {e}", self.dir.join("config.json").display())))
    }
}

/// A `*ForMaskedLM` model is a SPLADE model: max pooling of `log(1 + ReLU(logits))`, the only
/// kind TEI serves; sentence-transformers' `sum` and `log1p_relu` variants are refused.
fn read_splade(dir: &Path) -> Result<Pooling> {
    let path = dir.join("1_SpladePooling").join("config.json");
    if let Some(splade) = read_json::<SpladeConfig>(&path)?
        && (splade.pooling_strategy.as_str(), splade.activation_function.as_str()) != ("max", "relu")
    {
        return Err(EmbedError::Load(format!(
            "{}: SPLADE with {} pooling of {} is not supported; only max pooling of relu is",
            path.display(),
            splade.pooling_strategy,
            splade.activation_function
        )));
    }
    Ok(Pooling::Splade)
}

fn read_pooling(dir: &Path, architecture: Architecture) -> Result<Pooling> {
    let path = dir.join("1_Pooling").join("config.json");
    let Some(p) = read_json::<PoolingConfig>(&path)? else {
        return Ok(if architecture == Architecture::Qwen3 { Pooling::LastToken } else { Pooling::Mean });
    };
    let bad = |what: &str| EmbedError::Load(format!("{}: {what}", path.display()));
    if !p.include_prompt {
        return Err(bad("pooling without the prompt's tokens (`include_prompt: false`) is not supported"));
    }
    let pooling = match p.pooling_mode.as_deref() {
        Some("mean") => Pooling::Mean,
        Some("cls") => Pooling::Cls,
        Some("max") => Pooling::Max,
        Some("lasttoken") => Pooling::LastToken,
        Some(other) => return Err(bad(&format!("pooling mode `{other}` is not one of mean, cls, max, lasttoken"))),
        None => match (
            p.pooling_mode_mean_tokens,
            p.pooling_mode_cls_token,
            p.pooling_mode_max_tokens,
            p.pooling_mode_lasttoken,
        ) {
            (true, false, false, false) => Pooling::Mean,
            (false, true, false, false) => Pooling::Cls,
            (false, false, true, false) => Pooling::Max,
            (false, false, false, true) => Pooling::LastToken,
            _ => return Err(bad("exactly one of mean, CLS, max or last-token pooling must be enabled")),
        },
    };
    Ok(pooling)
}

/// `model_max_length` of `tokenizer_config.json`, where sentence-transformers 6 keeps the
/// maximum length; tokenizers without one write a huge placeholder, ignored here.
fn tokenizer_max_length(dir: &Path) -> Option<usize> {
    let config = read_json::<TokenizerConfig>(&dir.join("tokenizer_config.json")).ok().flatten()?;
    config.model_max_length.filter(|n| (1.0..1e7).contains(n)).map(|n| n as usize)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        dir
    }

    const XLMR: &str = r#"{"model_type": "xlm-roberta", "hidden_size": 8, "vocab_size": 10,
        "max_position_embeddings": 514, "pad_token_id": 1}"#;

    #[test]
    fn both_pooling_shapes_prompts_and_the_position_offset_are_read() {
        let dir = dir_with(&[
            ("config.json", XLMR),
            ("1_Pooling/config.json", r#"{"pooling_mode_lasttoken": true}"#),
            (
                "config_sentence_transformers.json",
                r#"{"prompts": {"query": "query: "}, "default_prompt_name": "query"}"#,
            ),
        ]);
        let layout = ModelLayout::read(dir.path()).expect("layout");
        assert_eq!(
            (layout.architecture, layout.pooling, layout.task),
            (Architecture::XlmRoberta, Pooling::LastToken, ModelTask::Embed)
        );
        assert_eq!(layout.max_seq_length, 512, "514 positions less the padding index + 1");
        assert_eq!(layout.prompts.resolve(None, None).expect("default"), Some("query: "));
        std::fs::write(dir.path().join("1_Pooling/config.json"), r#"{"pooling_mode": "max"}"#).expect("write");
        assert_eq!(ModelLayout::read(dir.path()).expect("layout").pooling, Pooling::Max);
    }

    #[test]
    fn what_the_backend_cannot_honour_is_refused_at_start_up() {
        for (file, text, says) in [
            ("1_Pooling/config.json", r#"{"pooling_mode": "mean", "include_prompt": false}"#, "include_prompt"),
            ("1_Pooling/config.json", r#"{"pooling_mode": "weightedmean"}"#, "weightedmean"),
            ("config_sentence_transformers.json", r#"{"prompts": {}, "default_prompt_name": "query"}"#, "query"),
        ] {
            let dir = dir_with(&[("config.json", XLMR), (file, text)]);
            let err = ModelLayout::read(dir.path()).expect_err(says).to_string();
            assert!(err.contains(says), "{err}");
        }
        let modernbert_reranker = r#"{"model_type": "modernbert", "architectures": ["ModernBertForSequenceClassification"],
            "hidden_size": 8, "vocab_size": 10}"#;
        let err = ModelLayout::read(dir_with(&[("config.json", modernbert_reranker)]).path()).expect_err("reranker");
        assert!(err.to_string().contains("cross-encoders"), "{err}");
    }
}
