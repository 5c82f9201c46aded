//! Wire types of the REST routes (see `docs/api.md`), converted by hand into domain values.

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
}

/// `POST /tokenize` request (TEI).
#[derive(Debug, Deserialize)]
pub struct TeiTokenizeRequest {
    pub inputs: TeiInputs,
    pub add_special_tokens: Option<bool>,
}

/// One token in a `/tokenize` response.
#[derive(Debug, Serialize)]
pub struct TeiToken {
    pub id: u32,
    pub text: String,
    pub special: bool,
    pub start: Option<usize>,
    pub stop: Option<usize>,
}
