//! Wire types of the REST routes (see `docs/api.md`) and their conversions, by hand, to and from
//! the service's requests and replies. Each route's defaults (TEI's `truncate: false`, say) are
//! part of its wire format and live here.

use aki_core::{EmbedOptions, EncodeOptions, Token, TruncationDirection};
use aki_service::{
    EmbedReply, EmbedRequest, Inputs, PromptChoice, RerankReply, RerankRequest, ServerInfo, TokenizeRequest,
};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// `POST /api/v1/embed` request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NativeRequest {
    pub texts: Vec<String>,
    pub model: Option<String>,
    pub normalize: Option<bool>,
    pub truncate: Option<bool>,
    pub dimensions: Option<usize>,
    /// One of the model's named prompts.
    pub prompt_name: Option<String>,
    /// A prompt text of the client's own.
    pub prompt: Option<String>,
}

impl From<NativeRequest> for EmbedRequest {
    fn from(r: NativeRequest) -> Self {
        EmbedRequest {
            model: r.model,
            inputs: Inputs::Texts(r.texts),
            options: EmbedOptions {
                normalize: r.normalize,
                encode: EncodeOptions { truncate: r.truncate.unwrap_or(true), direction: TruncationDirection::Right },
                dimensions: r.dimensions,
            },
            prompt: PromptChoice { name: r.prompt_name, text: r.prompt },
            deadline: None,
        }
    }
}

/// `POST /api/v1/embed` response.
#[derive(Debug, Serialize)]
pub struct NativeResponse {
    pub model: String,
    pub dimension: usize,
    pub embeddings: Vec<Vec<f32>>,
    pub usage: NativeUsage,
}

#[derive(Debug, Serialize)]
pub struct NativeUsage {
    pub tokens: usize,
}

impl From<EmbedReply> for NativeResponse {
    fn from(reply: EmbedReply) -> Self {
        Self {
            model: reply.model,
            dimension: reply.dimension,
            embeddings: reply.vectors,
            usage: NativeUsage { tokens: reply.tokens },
        }
    }
}

/// OpenAI's `input`: a string, strings, a token array, or token arrays.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OpenAiInput {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    #[default]
    Float,
    Base64,
}

/// `POST /v1/embeddings` request.
#[derive(Debug, Deserialize)]
pub struct OpenAiRequest {
    pub input: OpenAiInput,
    pub model: Option<String>,
    #[serde(default)]
    pub encoding_format: EncodingFormat,
    pub dimensions: Option<usize>,
    #[allow(dead_code)]
    pub user: Option<String>,
}

impl OpenAiRequest {
    /// The service request, and the format the reply's vectors take.
    pub fn into_request(self) -> (EmbedRequest, EncodingFormat) {
        let inputs = match self.input {
            OpenAiInput::Text(text) => Inputs::Texts(vec![text]),
            OpenAiInput::Texts(texts) => Inputs::Texts(texts),
            OpenAiInput::Tokens(ids) => Inputs::TokenIds(vec![ids]),
            OpenAiInput::TokenLists(lists) => Inputs::TokenIds(lists),
        };
        let options = EmbedOptions { dimensions: self.dimensions, ..EmbedOptions::default() };
        let request =
            EmbedRequest { model: self.model, inputs, options, prompt: PromptChoice::default(), deadline: None };
        (request, self.encoding_format)
    }
}

/// One vector of an OpenAI response: floats, or base64 of little-endian f32.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum OpenAiVector {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Debug, Serialize)]
pub struct OpenAiEmbedding {
    pub object: &'static str,
    pub index: usize,
    pub embedding: OpenAiVector,
}

#[derive(Debug, Serialize)]
pub struct OpenAiUsage {
    pub prompt_tokens: usize,
    pub total_tokens: usize,
}

/// `POST /v1/embeddings` response.
#[derive(Debug, Serialize)]
pub struct OpenAiResponse {
    pub object: &'static str,
    pub data: Vec<OpenAiEmbedding>,
    pub model: String,
    pub usage: OpenAiUsage,
}

impl OpenAiResponse {
    /// The reply with its vectors in `format`.
    pub fn new(reply: EmbedReply, format: EncodingFormat) -> Self {
        let data = reply
            .vectors
            .into_iter()
            .enumerate()
            .map(|(index, v)| OpenAiEmbedding {
                object: "embedding",
                index,
                embedding: match format {
                    EncodingFormat::Float => OpenAiVector::Float(v),
                    EncodingFormat::Base64 => OpenAiVector::Base64(base64_f32(&v)),
                },
            })
            .collect();
        Self {
            object: "list",
            data,
            model: reply.model,
            usage: OpenAiUsage { prompt_tokens: reply.tokens, total_tokens: reply.tokens },
        }
    }
}

fn base64_f32(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// One entry of `GET /v1/models`.
#[derive(Debug, Serialize)]
pub struct OpenAiModel {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: &'static str,
}

/// `GET /v1/models` response.
#[derive(Debug, Serialize)]
pub struct OpenAiModels {
    pub object: &'static str,
    pub data: Vec<OpenAiModel>,
}

impl OpenAiModels {
    pub fn new(ids: Vec<String>) -> Self {
        let data =
            ids.into_iter().map(|id| OpenAiModel { id, object: "model", created: 0, owned_by: "aki-embed" }).collect();
        Self { object: "list", data }
    }
}

/// TEI's `inputs`: one string or many.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum TeiInputs {
    One(String),
    Many(Vec<String>),
}

impl TeiInputs {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(text) => vec![text],
            Self::Many(texts) => texts,
        }
    }
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
pub enum TeiDirection {
    #[default]
    Right,
    Left,
}

/// `POST /embed` request (TEI).
#[derive(Debug, Deserialize)]
pub struct TeiEmbedRequest {
    pub inputs: TeiInputs,
    pub normalize: Option<bool>,
    pub truncate: Option<bool>,
    #[serde(default)]
    pub truncation_direction: TeiDirection,
    pub dimensions: Option<usize>,
    pub prompt_name: Option<String>,
}

impl From<TeiDirection> for TruncationDirection {
    fn from(direction: TeiDirection) -> Self {
        match direction {
            TeiDirection::Right => Self::Right,
            TeiDirection::Left => Self::Left,
        }
    }
}

impl From<TeiEmbedRequest> for EmbedRequest {
    /// TEI's defaults: normalised, and not truncated (an over-long input is an error).
    fn from(r: TeiEmbedRequest) -> Self {
        EmbedRequest {
            model: None,
            inputs: Inputs::Texts(r.inputs.into_vec()),
            options: EmbedOptions {
                normalize: Some(r.normalize.unwrap_or(true)),
                encode: EncodeOptions {
                    truncate: r.truncate.unwrap_or(false),
                    direction: r.truncation_direction.into(),
                },
                dimensions: r.dimensions,
            },
            prompt: PromptChoice { name: r.prompt_name, text: None },
            deadline: None,
        }
    }
}

/// `POST /rerank` request (TEI).
#[derive(Debug, Deserialize)]
pub struct TeiRerankRequest {
    pub query: String,
    pub texts: Vec<String>,
    pub truncate: Option<bool>,
    #[serde(default)]
    pub truncation_direction: TeiDirection,
    #[serde(default)]
    pub raw_scores: bool,
    #[serde(default)]
    pub return_text: bool,
}

impl TeiRerankRequest {
    /// The service request (TEI's default: not truncated), and the texts when the reply must
    /// carry them.
    pub fn into_request(self) -> (RerankRequest, Option<Vec<String>>) {
        let texts = self.return_text.then(|| self.texts.clone());
        let request = RerankRequest {
            model: None,
            query: self.query,
            texts: self.texts,
            encode: EncodeOptions {
                truncate: self.truncate.unwrap_or(false),
                direction: self.truncation_direction.into(),
            },
            raw_scores: self.raw_scores,
            top_n: None,
            deadline: None,
        };
        (request, texts)
    }
}

/// One entry of a `POST /rerank` response (TEI), best first.
#[derive(Debug, Serialize)]
pub struct TeiRank {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub score: f32,
}

/// A `POST /rerank` response from the reply, with each text when they were kept.
pub fn tei_ranks(reply: RerankReply, texts: Option<Vec<String>>) -> Vec<TeiRank> {
    reply
        .ranked
        .into_iter()
        .map(|r| TeiRank { index: r.index, text: texts.as_ref().map(|t| t[r.index].clone()), score: r.score })
        .collect()
}

/// A document of `POST /v1/rerank`: a string, or `{"text": ...}` as Jina and Cohere also take.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RerankDocument {
    Text(String),
    Object { text: String },
}

/// `POST /v1/rerank` request (Cohere and Jina).
#[derive(Debug, Deserialize)]
pub struct CohereRerankRequest {
    pub model: Option<String>,
    pub query: String,
    pub documents: Vec<RerankDocument>,
    pub top_n: Option<usize>,
    #[serde(default)]
    pub return_documents: bool,
    /// Cohere's cap on tokens per document: accepted, the model's maximum applies.
    #[allow(dead_code)]
    pub max_tokens_per_doc: Option<usize>,
}

impl CohereRerankRequest {
    /// The service request (over-long pairs are cut, as Cohere and Jina do) and the documents
    /// when the reply must carry them.
    pub fn into_request(self) -> (RerankRequest, Option<Vec<String>>) {
        let texts: Vec<String> = self
            .documents
            .into_iter()
            .map(|d| match d {
                RerankDocument::Text(text) | RerankDocument::Object { text } => text,
            })
            .collect();
        let kept = self.return_documents.then(|| texts.clone());
        let request = RerankRequest {
            model: self.model,
            query: self.query,
            texts,
            encode: EncodeOptions::default(),
            raw_scores: false,
            top_n: self.top_n,
            deadline: None,
        };
        (request, kept)
    }
}

/// `POST /v1/rerank` response.
#[derive(Debug, Serialize)]
pub struct CohereRerankResponse {
    pub id: String,
    pub model: String,
    pub results: Vec<CohereResult>,
    pub usage: CohereUsage,
}

#[derive(Debug, Serialize)]
pub struct CohereResult {
    pub index: usize,
    pub relevance_score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<CohereDocument>,
}

#[derive(Debug, Serialize)]
pub struct CohereDocument {
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct CohereUsage {
    pub total_tokens: usize,
}

impl CohereRerankResponse {
    /// The response to a request with id `id`, with each document when they were kept.
    pub fn new(id: String, reply: RerankReply, documents: Option<Vec<String>>) -> Self {
        let results = reply
            .ranked
            .iter()
            .map(|r| CohereResult {
                index: r.index,
                relevance_score: r.score,
                document: documents.as_ref().map(|d| CohereDocument { text: d[r.index].clone() }),
            })
            .collect();
        Self { id, model: reply.model, results, usage: CohereUsage { total_tokens: reply.tokens } }
    }
}

/// `POST /tokenize` request (TEI).
#[derive(Debug, Deserialize)]
pub struct TeiTokenizeRequest {
    pub inputs: TeiInputs,
    pub add_special_tokens: Option<bool>,
}

impl From<TeiTokenizeRequest> for TokenizeRequest {
    fn from(r: TeiTokenizeRequest) -> Self {
        TokenizeRequest {
            model: None,
            texts: r.inputs.into_vec(),
            add_special_tokens: r.add_special_tokens.unwrap_or(true),
            deadline: None,
        }
    }
}

/// One token in a `/tokenize` response: TEI gives special tokens no offsets.
#[derive(Debug, Serialize)]
pub struct TeiToken {
    pub id: u32,
    pub text: String,
    pub special: bool,
    pub start: Option<usize>,
    pub stop: Option<usize>,
}

impl From<Token> for TeiToken {
    fn from(t: Token) -> Self {
        Self {
            id: t.id,
            special: t.special,
            start: (!t.special).then_some(t.start),
            stop: (!t.special).then_some(t.stop),
            text: t.text,
        }
    }
}

/// `GET /info` response.
#[derive(Debug, Serialize)]
pub struct InfoResponse {
    pub model_id: String,
    pub dimension: usize,
    pub max_input_tokens: usize,
    pub pooling: &'static str,
    pub normalize: bool,
    pub dtype: String,
    pub device: String,
    /// The model family (`bert`, `xlm-roberta`, `modernbert`, `qwen3`).
    pub architecture: String,
    /// `embed` or `rerank`.
    pub task: &'static str,
    /// Which implementation runs it (`packed cpu (...)`, `candle-transformers`).
    pub engine: String,
    /// Its named prompts.
    pub prompts: std::collections::BTreeMap<String, String>,
    pub default_prompt_name: Option<String>,
    pub max_batch_size: usize,
    pub max_batch_tokens: usize,
    pub max_concurrent_batches: usize,
    pub max_forward_batch: usize,
    pub max_client_batch_size: usize,
    pub models: Vec<String>,
    pub version: &'static str,
}

impl From<ServerInfo> for InfoResponse {
    fn from(info: ServerInfo) -> Self {
        let model = info.model;
        Self {
            model_id: model.model_id,
            dimension: model.dimension,
            max_input_tokens: model.max_input_tokens,
            pooling: model.pooling.as_str(),
            normalize: model.normalize_default,
            dtype: model.dtype,
            device: model.device,
            architecture: model.architecture,
            task: model.task.as_str(),
            engine: model.engine,
            prompts: model.prompts.named,
            default_prompt_name: model.prompts.default_name,
            max_batch_size: info.batching.max_batch_size,
            max_batch_tokens: info.batching.max_batch_tokens,
            max_concurrent_batches: info.batching.max_concurrent_batches,
            max_forward_batch: info.batching.max_forward_batch,
            max_client_batch_size: info.max_client_batch_size,
            models: info.models,
            version: info.version,
        }
    }
}
