//! The OpenAI family, `POST /v1/embeddings` (also at `/embeddings`, where TEI serves it) and
//! `GET /v1/models`: their wire types, handlers,
//! routes and OpenAI's error shape `{"error": {"message", "type", "param", "code"}}`, which the
//! Cohere family shares. The official `openai` Python client works against them.

use aki_core::quantize::{OutputType, Quantized};
use aki_core::{EmbedOptions, ErrorKind};
use aki_service::{Caller, EmbedReply, EmbedRequest, Inputs, PromptChoice};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::openapi::{RefOr, Response as DocResponse};
use utoipa::{IntoResponses, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::failure::{Failure, Problem};
use crate::family::{Body, ErrorShape, Family, PriorityField, UNAUTHORIZED, asking, failure_responses, timed, timing};

const EMBEDDINGS: &str = "/v1/embeddings";
/// Where TEI serves OpenAI's embeddings too.
const TEI_EMBEDDINGS: &str = "/embeddings";
const MODELS: &str = "/v1/models";

/// OpenAI's error shape, which the Cohere family uses too.
pub const SHAPE: ErrorShape = ErrorShape(|failure| error_body(failure).into_response());

/// The family's routes.
pub fn routes() -> Family {
    let routes = OpenApiRouter::new().routes(timed(routes!(embeddings))).routes(timed(routes!(tei_embeddings)));
    Family::new(SHAPE, routes.routes(routes!(models)))
}

/// OpenAI's `input`: a string, strings, a token array, or token arrays.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum OpenAiInput {
    /// One text.
    Text(String),
    /// Texts, one vector each.
    Texts(Vec<String>),
    /// One complete model input as token ids (special tokens included, as `/tokenize` gives).
    Tokens(Vec<u32>),
    /// Complete model inputs as token ids.
    TokenLists(Vec<Vec<u32>>),
}

/// How the vectors are written.
#[derive(Debug, Deserialize, ToSchema, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    /// Arrays of numbers.
    #[default]
    Float,
    /// Base64 of the little-endian f32 bytes.
    Base64,
    /// Signed bytes, as Cohere's `int8` (not OpenAI's: its client takes only float and base64).
    Int8,
    /// Unsigned bytes, as Cohere's `uint8`.
    Uint8,
    /// Packed bits as signed bytes, as Cohere's `binary`.
    Binary,
    /// Packed bits as unsigned bytes, as Cohere's `ubinary`.
    Ubinary,
}

impl EncodingFormat {
    /// The quantized type it asks for; none for float and base64.
    fn quantized(self) -> Option<OutputType> {
        match self {
            Self::Float | Self::Base64 => None,
            Self::Int8 => Some(OutputType::Int8),
            Self::Uint8 => Some(OutputType::Uint8),
            Self::Binary => Some(OutputType::Binary),
            Self::Ubinary => Some(OutputType::Ubinary),
        }
    }
}

/// `POST /v1/embeddings` request.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"input": "A man is eating food.", "model": "sentence-transformers/all-MiniLM-L6-v2"}))]
pub struct OpenAiRequest {
    /// What to embed. Token lists are complete model inputs, each checked on its own: empty,
    /// an id outside the vocabulary, or over the model's maximum is a 422 (over-long lists are cut
    /// instead, truncation being on here).
    pub input: OpenAiInput,
    /// A model this server may serve; the default model when unset.
    pub model: Option<String>,
    /// How the vectors are written.
    #[serde(default)]
    #[schema(default = "float")]
    pub encoding_format: EncodingFormat,
    /// Keep the first `dimensions` values of each vector (Matryoshka), then normalise.
    #[schema(minimum = 1)]
    pub dimensions: Option<usize>,
    /// OpenAI's end-user id: accepted and ignored.
    #[allow(dead_code)]
    pub user: Option<String>,
    /// The lane to wait in: `interactive` (search queries) or `bulk` (indexing); by size when
    /// unset or `auto`. Over the `x-priority` header.
    pub priority: Option<PriorityField>,
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
        let prompt = PromptChoice::default();
        let request =
            EmbedRequest { model: self.model, inputs, options, prompt, deadline: None, caller: Caller::default() };
        (request, self.encoding_format)
    }
}

/// One vector of an OpenAI response: floats, or base64 of little-endian f32.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum OpenAiVector {
    /// With `encoding_format: "float"`.
    Float(Vec<f32>),
    /// With `encoding_format: "base64"`: the little-endian f32 bytes.
    Base64(String),
    /// With a quantized `encoding_format`: its bytes as numbers.
    Bytes(Vec<i16>),
}

/// `"list"`, OpenAI's tag of a list object.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum List {
    /// The only value.
    List,
}

/// `"embedding"`, OpenAI's tag of an embedding.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingTag {
    /// The only value.
    Embedding,
}

/// `"model"`, OpenAI's tag of a model.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModelTag {
    /// The only value.
    Model,
}

/// One input's vector.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiEmbedding {
    /// Always `"embedding"`.
    pub object: EmbeddingTag,
    /// The input's position in the request.
    pub index: usize,
    /// The vector.
    pub embedding: OpenAiVector,
}

/// What an OpenAI request cost.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiUsage {
    /// Tokens processed, special tokens included, after truncation.
    pub prompt_tokens: usize,
    /// The same as `prompt_tokens`.
    pub total_tokens: usize,
}

/// `POST /v1/embeddings` response.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiResponse {
    /// Always `"list"`.
    pub object: List,
    /// One entry per input, in order.
    pub data: Vec<OpenAiEmbedding>,
    /// The model that answered.
    pub model: String,
    /// What the request cost.
    pub usage: OpenAiUsage,
}

impl OpenAiResponse {
    /// The reply with its vectors in `format` (float or base64).
    pub fn new(reply: EmbedReply, format: EncodingFormat) -> Self {
        Self::of(reply, |v| match format {
            EncodingFormat::Base64 => OpenAiVector::Base64(base64_f32(&v)),
            _ => OpenAiVector::Float(v),
        })
    }

    /// The reply of a quantized `encoding_format`: each vector's one quantized form.
    fn quantized(reply: EmbedReply<Quantized>) -> Self {
        Self::of(reply, |q| {
            let bytes: Vec<i16> = match (q.int8, q.uint8, q.binary, q.ubinary) {
                (Some(v), ..) | (_, _, Some(v), _) => v.into_iter().map(i16::from).collect(),
                (_, Some(v), ..) | (.., Some(v)) => v.into_iter().map(i16::from).collect(),
                _ => Vec::new(),
            };
            OpenAiVector::Bytes(bytes)
        })
    }

    fn of<V>(reply: EmbedReply<V>, embedding: impl Fn(V) -> OpenAiVector) -> Self {
        let data = reply
            .vectors
            .into_iter()
            .enumerate()
            .map(|(index, v)| OpenAiEmbedding { object: EmbeddingTag::Embedding, index, embedding: embedding(v) })
            .collect();
        let usage = OpenAiUsage { prompt_tokens: reply.tokens, total_tokens: reply.tokens };
        Self { object: List::List, data, model: reply.model, usage }
    }
}

/// `v` as base64 of its little-endian f32 bytes (OpenAI's and Cohere's `base64`).
pub(crate) fn base64_f32(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// One model this server can serve.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiModel {
    /// The id to name in `model`.
    #[schema(example = "sentence-transformers/all-MiniLM-L6-v2")]
    pub id: String,
    /// Always `"model"`.
    pub object: ModelTag,
    /// Always 0.
    pub created: u64,
    /// Always `"aki-embed"`.
    pub owned_by: &'static str,
}

/// `GET /v1/models` response.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiModels {
    /// Always `"list"`.
    pub object: List,
    /// The models, the default first.
    pub data: Vec<OpenAiModel>,
}

impl OpenAiModels {
    /// The list of `ids`.
    pub fn new(ids: Vec<String>) -> Self {
        let model = |id| OpenAiModel { id, object: ModelTag::Model, created: 0, owned_by: "aki-embed" };
        Self { object: List::List, data: ids.into_iter().map(model).collect() }
    }
}

/// A failure in OpenAI's shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiError {
    /// What went wrong.
    pub error: OpenAiErrorDetail,
}

/// The inside of an `OpenAiError`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiErrorDetail {
    /// What to fix, or (for 5xx) that the server failed.
    pub message: String,
    /// `invalid_request_error`, `rate_limit_error` or `server_error`.
    #[serde(rename = "type")]
    #[schema(example = "invalid_request_error")]
    pub kind: &'static str,
    /// Always null.
    #[schema(required = true)]
    pub param: Option<String>,
    /// `invalid_api_key`, `model_not_found`, `rate_limit_exceeded`, `timeout`, or null.
    #[schema(required = true)]
    pub code: Option<&'static str>,
}

/// The body of `failure` in OpenAI's shape.
pub fn error_body(failure: &Failure) -> Json<OpenAiError> {
    let (kind, code) = match failure.problem() {
        Problem::BadRequest(_) | Problem::Kind(ErrorKind::Empty | ErrorKind::Validation) => {
            ("invalid_request_error", None)
        }
        Problem::Kind(ErrorKind::Unauthorized) => ("invalid_request_error", Some("invalid_api_key")),
        Problem::Kind(ErrorKind::NotFound) => ("invalid_request_error", Some("model_not_found")),
        Problem::Kind(ErrorKind::Overloaded) => ("rate_limit_error", Some("rate_limit_exceeded")),
        Problem::Kind(ErrorKind::Timeout) => ("server_error", Some("timeout")),
        Problem::Kind(ErrorKind::Unavailable | ErrorKind::Backend | ErrorKind::Internal) => ("server_error", None),
    };
    let error = OpenAiErrorDetail { message: failure.message().to_string(), kind, param: None, code };
    Json(OpenAiError { error })
}

impl IntoResponses for OpenAiError {
    fn responses() -> std::collections::BTreeMap<String, RefOr<DocResponse>> {
        failure_responses("OpenAiError")
    }
}

/// Create embeddings (OpenAI-compatible).
#[utoipa::path(
    post,
    path = EMBEDDINGS,
    tag = "openai",
    request_body = OpenAiRequest,
    responses(
        (status = 200, description = "one vector per input", body = OpenAiResponse),
        OpenAiError,
    ),
)]
async fn embeddings(
    State(engine): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(request): Body<OpenAiRequest>,
) -> Result<Response, Failure> {
    answer(&engine, EMBEDDINGS, caller, request).await
}

/// Create embeddings (OpenAI-compatible), at the path TEI serves them on too.
#[utoipa::path(
    post,
    path = TEI_EMBEDDINGS,
    tag = "openai",
    request_body = OpenAiRequest,
    responses(
        (status = 200, description = "one vector per input", body = OpenAiResponse),
        OpenAiError,
    ),
)]
async fn tei_embeddings(
    State(engine): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(request): Body<OpenAiRequest>,
) -> Result<Response, Failure> {
    answer(&engine, TEI_EMBEDDINGS, caller, request).await
}

async fn answer(engine: &AppState, route: &str, caller: Caller, request: OpenAiRequest) -> Result<Response, Failure> {
    let caller = asking(caller, request.priority);
    let (request, format) = request.into_request();
    let request = EmbedRequest { caller, ..request };
    if let Some(kind) = format.quantized() {
        let reply = engine.service.embed_quantized(route, request, &[kind]).await?;
        let headers = timing(reply.tokens, reply.lane, reply.timing, reply.total);
        return Ok((headers, Json(OpenAiResponse::quantized(reply))).into_response());
    }
    let reply = engine.service.embed(route, request).await?;
    let headers = timing(reply.tokens, reply.lane, reply.timing, reply.total);
    Ok((headers, Json(OpenAiResponse::new(reply, format))).into_response())
}

/// Models this server can serve (OpenAI-compatible).
#[utoipa::path(
    get,
    path = MODELS,
    tag = "openai",
    responses(
        (status = 200, description = "the models, the default first", body = OpenAiModels),
        (status = 401, description = UNAUTHORIZED, body = OpenAiError),
    ),
)]
async fn models(State(engine): State<AppState>) -> Json<OpenAiModels> {
    Json(OpenAiModels::new(engine.service.models(MODELS)))
}
