//! Domain values that cross the ports: options, encodings, vectors and model facts.

/// Which side of an over-long input is cut when truncating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum TruncationDirection {
    /// Keep the start of the text (the default, as in sentence-transformers).
    #[default]
    Right,
    /// Keep the end of the text.
    Left,
}

/// How token vectors become one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Pooling {
    /// Mean over the tokens the attention mask keeps.
    #[default]
    Mean,
    /// The first token ([CLS]).
    Cls,
    /// Element-wise maximum over the kept tokens.
    Max,
    /// The last kept token (decoder embedders such as Qwen3-Embedding, whose tokenizer ends
    /// every input with an end-of-text token).
    LastToken,
    /// SPLADE (a `*ForMaskedLM` model's head): for each vocabulary entry, the maximum over the
    /// tokens of `log(1 + ReLU(logit))`; one value per vocabulary entry, mostly zero.
    Splade,
}

impl Pooling {
    /// The name sentence-transformers gives this mode (`mean`, `cls`, `max`), as APIs show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mean => "mean",
            Self::Cls => "cls",
            Self::Max => "max",
            Self::LastToken => "lasttoken",
            Self::Splade => "splade",
        }
    }
}

/// Options that shape tokenization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncodeOptions {
    /// Cut inputs longer than the model's maximum; when false such an input is a
    /// [`crate::EmbedError::Validation`] error.
    pub truncate: bool,
    /// Which side to cut.
    pub direction: TruncationDirection,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self { truncate: true, direction: TruncationDirection::Right }
    }
}

/// Options of one embedding request: how its inputs are cut and its vectors finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EmbedOptions {
    /// L2-normalise the vectors; `None` follows the model (its `Normalize` module).
    pub normalize: Option<bool>,
    /// Tokenization options.
    pub encode: EncodeOptions,
    /// Matryoshka truncation: keep the first `dimensions` values (before normalising).
    pub dimensions: Option<usize>,
    /// What becomes of an input longer than the model's maximum.
    pub long: LongInputs,
}

/// What becomes of an input longer than the model's maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LongInputs {
    /// As the server is configured (`limits.long_inputs`); where nothing decides, [`Cut`](Self::Cut).
    #[default]
    ServerDefault,
    /// Cut to the maximum (or refused, without `encode.truncate`).
    Cut,
    /// Embedded in windows of the model's maximum, each starting `overlap` tokens before the
    /// previous one ends, and the windows' vectors pooled into one (vLLM's chunked processing):
    /// weighted by their tokens, or their maximum for max and SPLADE pooling; usage counts
    /// every window's tokens. Texts only: token-id inputs are complete model inputs.
    Windows {
        /// Tokens each window shares with the one before.
        overlap: usize,
    },
}

/// One tokenized input, ready for inference.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Encoding {
    /// Token ids including the special tokens.
    pub ids: Vec<u32>,
    /// Segment (token type) ids, same length as `ids`.
    pub type_ids: Vec<u32>,
}

impl Encoding {
    /// Number of tokens, special tokens included.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when there are no tokens at all.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// One token of a tokenized text, for display (`/tokenize`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Its id in the model's vocabulary.
    pub id: u32,
    /// Its text as the vocabulary spells it (`##ing`, `[CLS]`).
    pub text: String,
    /// Whether it is a special token ([CLS], [SEP], ...).
    pub special: bool,
    /// Byte offset in the input where it starts (special tokens: 0).
    pub start: usize,
    /// Byte offset in the input where it ends.
    pub stop: usize,
}

/// Pooled vectors of one call to [`EmbeddingProvider::embed`](crate::EmbeddingProvider::embed),
/// with where its time went.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pooled {
    /// One pooled, not normalised vector per encoding, in order.
    pub vectors: Vec<Vec<f32>>,
    /// Queue and inference time (tokenization is not part of this call).
    pub timing: Timing,
}

/// Classifier scores of one call to
/// [`EmbeddingProvider::predict`](crate::EmbeddingProvider::predict), with where its time went.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Predictions {
    /// The raw logits of each encoding, one per label, in order.
    pub logits: Vec<Vec<f32>>,
    /// Queue and inference time (tokenization is not part of this call).
    pub timing: Timing,
}

/// Token vectors of one call to
/// [`EmbeddingProvider::token_vectors`](crate::EmbeddingProvider::token_vectors), with where
/// its time went.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TokenVectors {
    /// Per encoding, in order: the last hidden state of each of its tokens, one after another
    /// (`tokens x width` values, row by row).
    pub vectors: Vec<Vec<f32>>,
    /// Queue and inference time (tokenization is not part of this call).
    pub timing: Timing,
}

/// Where a request's time went; zero where a provider does not measure a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timing {
    /// Tokenizing the inputs.
    pub tokenize: std::time::Duration,
    /// Waiting in a batcher's queue (the longest wait of the request's items).
    pub queue: std::time::Duration,
    /// Running the model (the batches that held the request's items).
    pub inference: std::time::Duration,
}

/// Vectors for a request, in input order, with token usage.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Embeddings {
    /// One vector per input, in input order.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens of each input (after truncation, special tokens included), in input order.
    pub token_counts: Vec<usize>,
    /// Where the time went.
    pub timing: Timing,
}

impl Embeddings {
    /// Tokens processed for the whole request.
    pub fn tokens(&self) -> usize {
        self.token_counts.iter().sum()
    }
}

/// Token vectors for a request (TEI's `embed_all`): per input, one vector per token, special
/// tokens included, in input order, with token usage.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TokenEmbeddings {
    /// Per input, the vector of each of its tokens.
    pub vectors: Vec<Vec<Vec<f32>>>,
    /// Tokens of each input (after truncation, special tokens included), in input order.
    pub token_counts: Vec<usize>,
    /// Where the time went.
    pub timing: Timing,
}

impl TokenEmbeddings {
    /// Tokens processed for the whole request.
    pub fn tokens(&self) -> usize {
        self.token_counts.iter().sum()
    }
}

/// Scores for a request of `(query, text)` pairs, in input order, with token usage.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scores {
    /// The classifier's raw logits for each pair, one per label, in input order.
    pub logits: Vec<Vec<f32>>,
    /// Tokens of each pair (after truncation, special tokens included), in input order.
    pub token_counts: Vec<usize>,
    /// Where the time went.
    pub timing: Timing,
}

impl Scores {
    /// Tokens processed for the whole request.
    pub fn tokens(&self) -> usize {
        self.token_counts.iter().sum()
    }
}

/// What a model computes from its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ModelTask {
    /// One pooled vector per text (a sentence embedder).
    #[default]
    Embed,
    /// A sequence classifier: the logits of each text or pair, one per label ([`Scores`]). With
    /// one label it is a reranker (a cross-encoder's relevance of (query, text) pairs); with
    /// several, a classifier (sentiment, NLI, moderation).
    Rerank,
}

impl ModelTask {
    /// The name APIs show (`embed`, `rerank`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Embed => "embed",
            Self::Rerank => "rerank",
        }
    }
}

/// One input of a sequence classifier: a text, or a pair of texts in one input (NLI's premise
/// and hypothesis, a cross-encoder's query and passage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClassifierInput {
    /// One text.
    Single(String),
    /// Two texts, joined by the model's separator and segment ids.
    Pair(String, String),
}

impl ClassifierInput {
    /// The characters of its text or texts.
    pub fn chars(&self) -> usize {
        match self {
            Self::Single(text) => text.chars().count(),
            Self::Pair(a, b) => a.chars().count() + b.chars().count(),
        }
    }
}

/// The model's sentence-transformers prompts (`config_sentence_transformers.json`): texts put
/// before each input, picked by name per request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Prompts {
    /// Prompt texts by name (E5's `query` -> `query: `).
    pub named: std::collections::BTreeMap<String, String>,
    /// The name used when a request names none.
    pub default_name: Option<String>,
}

impl Prompts {
    /// The text to put before each input: `prompt` itself, else the prompt named `name`, else
    /// the default prompt, else none.
    ///
    /// # Errors
    /// [`crate::EmbedError::Validation`] for both `prompt` and `name`, or a name the model does
    /// not have (the message lists the ones it has).
    pub fn resolve<'a>(&'a self, prompt: Option<&'a str>, name: Option<&str>) -> crate::Result<Option<&'a str>> {
        match (prompt, name) {
            (Some(_), Some(_)) => {
                Err(crate::EmbedError::Validation("give `prompt` or `prompt_name`, not both".to_string()))
            }
            (Some(text), None) => Ok(Some(text)),
            (None, Some(name)) => self.named.get(name).map(|p| Some(p.as_str())).ok_or_else(|| {
                let known: Vec<&str> = self.named.keys().map(String::as_str).collect();
                crate::EmbedError::Validation(format!(
                    "the model has no prompt named `{name}`; it has: {}",
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                ))
            }),
            (None, None) => Ok(self.default_name.as_ref().and_then(|n| self.named.get(n)).map(String::as_str)),
        }
    }
}

/// Facts about the model a provider serves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModelInfo {
    /// The id the model was requested by (hub id or directory).
    pub model_id: String,
    /// Length of the vectors it returns.
    pub dimension: usize,
    /// Longest input in tokens, special tokens included.
    pub max_input_tokens: usize,
    /// Tokens in the vocabulary: token ids must be below it.
    pub vocab_size: usize,
    /// Pooling applied to the token vectors.
    pub pooling: Pooling,
    /// Whether vectors are normalised when the request does not say.
    pub normalize_default: bool,
    /// Where inference runs (`cpu`, `cuda:0`, `metal`).
    pub device: String,
    /// Numeric type of inference (`f32`, `f16`, `bf16`).
    pub dtype: String,
    /// Whether a batch costs `longest sequence x items` (true) or the sum of lengths (false);
    /// batchers use it to budget tokens and decide whether length-bucketing pays.
    pub is_padded: bool,
    /// Which implementation runs the model, for `/info` and logs (`packed cpu (avx512+bf16)`,
    /// `candle-transformers`).
    pub engine: String,
    /// The model family (`bert`, `xlm-roberta`, `modernbert`, `qwen3`).
    pub architecture: String,
    /// Embedder, or sequence classifier (reranker or classifier).
    pub task: ModelTask,
    /// A sequence classifier's label names, by output (`id2label` of `config.json`); empty for
    /// embedders.
    pub labels: Vec<String>,
    /// Whether a classifier's labels are independent (`problem_type` is
    /// `multi_label_classification`): each scored by a sigmoid instead of a softmax over all.
    pub multi_label: bool,
    /// Its named prompts and default prompt.
    pub prompts: Prompts,
}

impl ModelInfo {
    /// Whether it is a reranker: a sequence classifier with one label (a cross-encoder's
    /// relevance), as opposed to an embedder or a classifier of several labels.
    pub fn is_reranker(&self) -> bool {
        self.task == ModelTask::Rerank && self.dimension == 1
    }

    /// Whether it is a SPLADE model: an embedder whose vectors have one value per vocabulary
    /// entry ([`Pooling::Splade`]), served sparse.
    pub fn is_splade(&self) -> bool {
        self.task == ModelTask::Embed && self.pooling == Pooling::Splade
    }

    /// Its numeric type as PyTorch and TEI name it (`float32`, `float16`, `bfloat16`).
    pub fn torch_dtype(&self) -> &str {
        match self.dtype.as_str() {
            "f32" => "float32",
            "f16" => "float16",
            "bf16" => "bfloat16",
            other => other,
        }
    }
}

/// A small embedder's facts, for the crate's unit tests.
#[cfg(test)]
pub(crate) fn sample_info() -> ModelInfo {
    ModelInfo {
        model_id: "m".into(),
        dimension: 4,
        max_input_tokens: 8,
        vocab_size: 100,
        pooling: Pooling::Mean,
        normalize_default: true,
        device: "cpu".into(),
        dtype: "f32".into(),
        is_padded: true,
        engine: "test".into(),
        ..ModelInfo::default()
    }
}
