//! The native family, `POST /api/v1/embed`: its wire types, handler, routes and error shape
//! `{"error": {"kind", "message"}}`, which `/info` shares and any failure starts in.

use aki_core::quantize::OutputType;
use aki_core::{EmbedOptions, EncodeOptions, ErrorKind, TruncationDirection};
use aki_service::{Caller, EmbedReply, EmbedRequest, Inputs, PromptChoice};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::openapi::{RefOr, Response as DocResponse};
use utoipa::{IntoResponses, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::failure::{Failure, Problem};
use crate::family::{Body, ErrorShape, Family, PriorityField, asking, failure_responses, timed, timing};
use crate::quantized::{EmbeddingType, EmbeddingsByType};

/// The route, as the service's metrics name it.
const EMBED: &str = "/api/v1/embed";

/// The native error shape, which the operations family uses too.
pub const SHAPE: ErrorShape = ErrorShape(|failure| error_body(failure).into_response());

/// The family's routes.
pub fn routes() -> Family {
    Family::new(SHAPE, OpenApiRouter::new().routes(timed(routes!(embed))))
}

/// `POST /api/v1/embed` request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"texts": ["A man is eating food.", "A man is riding a horse."]}))]
pub struct NativeRequest {
    /// The texts, one vector each, in order.
    pub texts: Vec<String>,
    /// A model this server may serve (hub id or directory); the default model when unset.
    pub model: Option<String>,
    /// Scale each vector to unit length; when unset the model decides (its `Normalize` module).
    pub normalize: Option<bool>,
    /// Cut inputs longer than the model's maximum; when false such an input is a 422.
    #[schema(default = true)]
    pub truncate: Option<bool>,
    /// Keep the first `dimensions` values of each vector (Matryoshka), then normalise.
    #[schema(minimum = 1)]
    pub dimensions: Option<usize>,
    /// One of the model's named prompts (`config_sentence_transformers.json`), put before each
    /// text; the model's default prompt applies when unset.
    pub prompt_name: Option<String>,
    /// A prompt text of the client's own, put before each text (not together with `prompt_name`).
    pub prompt: Option<String>,
    /// The lane to wait in: `interactive` (search queries) or `bulk` (indexing); by size when
    /// unset or `auto`. Over the `x-priority` header.
    pub priority: Option<PriorityField>,
    /// Also answer each vector in these types (`embeddings_by_type`; see docs/api.md, "Output
    /// types").
    pub embedding_types: Option<Vec<EmbeddingType>>,
    /// Inputs longer than the model's maximum: `cut` (to the maximum, or refused without
    /// `truncate`), or `windows` (embedded in overlapping windows pooled into one vector); the
    /// server's `limits.window_long_inputs` decides when unset.
    pub long_inputs: Option<LongInputsField>,
    /// Tokens each window shares with the one before (`limits.window_overlap_tokens` when
    /// unset); given alone, it asks for `windows`.
    pub window_overlap: Option<usize>,
}

/// What becomes of an input longer than the model's maximum.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LongInputsField {
    /// Cut to the maximum, or refused without `truncate`.
    Cut,
    /// Embedded in overlapping windows whose vectors are pooled into one, weighted by tokens.
    Windows,
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
                ..EmbedOptions::default()
            },
            prompt: PromptChoice { name: r.prompt_name, text: r.prompt },
            deadline: None,
            caller: Caller::default(),
        }
    }
}

/// `POST /api/v1/embed` response.
#[derive(Debug, Serialize, ToSchema)]
pub struct NativeResponse {
    /// The model that answered.
    #[schema(example = "sentence-transformers/all-MiniLM-L6-v2")]
    pub model: String,
    /// The length of each vector.
    #[schema(example = 384)]
    pub dimension: usize,
    /// One vector per text, in order.
    pub embeddings: Vec<Vec<f32>>,
    /// The vectors in each of the request's `embedding_types`, when it gave any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embeddings_by_type: Option<EmbeddingsByType>,
    /// What the request cost.
    pub usage: NativeUsage,
}

/// The tokens a native request processed.
#[derive(Debug, Serialize, ToSchema)]
pub struct NativeUsage {
    /// Tokens processed, special tokens and prompts included, after truncation.
    pub tokens: usize,
}

impl From<EmbedReply> for NativeResponse {
    fn from(reply: EmbedReply) -> Self {
        Self {
            model: reply.model,
            dimension: reply.dimension,
            embeddings: reply.vectors,
            embeddings_by_type: None,
            usage: NativeUsage { tokens: reply.tokens },
        }
    }
}

/// A failure in the native shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct NativeError {
    /// What went wrong.
    pub error: NativeErrorDetail,
}

/// The inside of a `NativeError`.
#[derive(Debug, Serialize, ToSchema)]
pub struct NativeErrorDetail {
    /// The error kind: `bad_request` for a body that is not this route's JSON, else the core
    /// kind (`validation`, `unauthorized`, `not_found`, `overloaded`, `unavailable`, `timeout`,
    /// `backend`, `internal`).
    #[schema(example = "validation")]
    pub kind: &'static str,
    /// What to fix, or (for 5xx) that the server failed.
    pub message: String,
}

/// The body of `failure` in the native shape.
pub fn error_body(failure: &Failure) -> Json<NativeError> {
    let kind = match failure.problem() {
        Problem::BadRequest(_) => "bad_request",
        // No input at all is a validation error here.
        Problem::Kind(ErrorKind::Empty) => ErrorKind::Validation.as_str(),
        Problem::Kind(kind) => kind.as_str(),
    };
    Json(NativeError { error: NativeErrorDetail { kind, message: failure.message().to_string() } })
}

impl IntoResponses for NativeError {
    fn responses() -> std::collections::BTreeMap<String, RefOr<DocResponse>> {
        failure_responses("NativeError")
    }
}

/// Embed texts (native).
#[utoipa::path(
    post,
    path = EMBED,
    tag = "native",
    request_body = NativeRequest,
    responses(
        (status = 200, description = "one vector per text", body = NativeResponse),
        NativeError,
    ),
)]
async fn embed(
    State(engine): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(request): Body<NativeRequest>,
) -> Result<Response, Failure> {
    let caller = asking(caller, request.priority);
    let asked = request.embedding_types.clone();
    let windows = request.long_inputs.map(|l| matches!(l, LongInputsField::Windows));
    let long = engine.service.long_inputs(windows, request.window_overlap);
    let mut request = EmbedRequest { caller, ..request.into() };
    request.options.long = long;
    let Some(asked) = asked else {
        let reply = engine.service.embed(EMBED, request).await?;
        let headers = timing(reply.tokens, reply.lane, reply.timing, reply.total);
        return Ok((headers, Json(NativeResponse::from(reply))).into_response());
    };
    let mut types = EmbeddingType::outputs(&asked);
    types.push(OutputType::Float);
    let reply = engine.service.embed_quantized(EMBED, request, &types).await?;
    let headers = timing(reply.tokens, reply.lane, reply.timing, reply.total);
    let by_type = EmbeddingsByType::new(&reply.vectors, &asked);
    let response = NativeResponse {
        model: reply.model,
        dimension: reply.dimension,
        embeddings: reply.vectors.into_iter().map(|q| q.float.unwrap_or_default()).collect(),
        embeddings_by_type: Some(by_type),
        usage: NativeUsage { tokens: reply.tokens },
    };
    Ok((headers, Json(response)).into_response())
}
