//! Cohere's `POST /v2/embed` and `/v1/embed`: texts in, vectors in each of `embedding_types`
//! out (`float`, `int8`, `uint8`, `binary`, `ubinary`, `base64`), keyed by type; `input_type`
//! picks the prompt `input_type_prompts` maps it to for the model, else the model's prompt of
//! that name (or `query` / `passage` / `document` for the search types) when it has one.
//! `ClientV2.embed` and `Client.embed` of Cohere's SDK call them.

use aki_core::{EmbedOptions, EncodeOptions, Prompts, TruncationDirection};
use aki_service::{Caller, EmbedRequest, Inputs, PromptChoice};
use aki_wiring::{InputTypePrompts, MappedPrompt};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::failure::Failure;
use crate::family::{Body, timed, timing};
use crate::openai::OpenAiError;
use crate::quantized::{EmbeddingType, EmbeddingsByType};

const EMBED_V1: &str = "/v1/embed";
const EMBED_V2: &str = "/v2/embed";

/// The routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(timed(routes!(embed_v1))).routes(timed(routes!(embed_v2)))
}

/// What the texts are for, which picks the prompt.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CohereInputType {
    /// Queries of a search: the model's `search_query` prompt, else `query`.
    SearchQuery,
    /// Documents to search: `search_document`, else `passage`, else `document`.
    SearchDocument,
    /// Texts to classify: `classification`.
    Classification,
    /// Texts to cluster: `clustering`.
    Clustering,
    /// Images are not served: refused.
    Image,
}

impl CohereInputType {
    /// The model's prompt names this type takes, in order of preference.
    fn prompt_names(self) -> &'static [&'static str] {
        match self {
            Self::SearchQuery => &["search_query", "query"],
            // `passage` before `document`: sentence-transformers adds an empty `document`
            // prompt when it saves a model, while E5's `passage: ` is the author's.
            Self::SearchDocument => &["search_document", "passage", "document"],
            Self::Classification => &["classification"],
            Self::Clustering => &["clustering"],
            Self::Image => &[],
        }
    }

    /// Its wire name, the key of `input_type_prompts`.
    fn name(self) -> &'static str {
        match self {
            Self::SearchQuery => "search_query",
            Self::SearchDocument => "search_document",
            Self::Classification => "classification",
            Self::Clustering => "clustering",
            Self::Image => "image",
        }
    }

    /// The prompt of this type for `model` (as the request names it) with `prompts`: the one
    /// `mapping` gives it, else the first of its prompt names the model has; neither means the
    /// model's default prompt.
    fn prompt(self, mapping: &InputTypePrompts, model: &str, prompts: &Prompts) -> aki_core::Result<PromptChoice> {
        let named = |name: &str| PromptChoice { name: Some(name.to_string()), text: None };
        match mapping.prompt(model, self.name()) {
            MappedPrompt::Named(name) if prompts.named.contains_key(name) => Ok(named(name)),
            MappedPrompt::Named(name) => Err(aki_core::EmbedError::Internal(format!(
                "`input_type_prompts.\"{model}\".{}` names the prompt `{name}`, which the model does not have",
                self.name()
            ))),
            MappedPrompt::Bare => Ok(PromptChoice { name: None, text: Some(String::new()) }),
            MappedPrompt::Unmapped => Ok(self
                .prompt_names()
                .iter()
                .find(|name| prompts.named.contains_key(**name))
                .map_or_else(PromptChoice::default, |name| named(name))),
        }
    }
}

/// What is done with an input longer than the model's maximum.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum CohereTruncate {
    /// Refused.
    None,
    /// Its start is cut.
    Start,
    /// Its end is cut (the default).
    #[default]
    End,
}

/// `POST /v2/embed` and `/v1/embed` request (Cohere).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"model": "embed-english-v3.0", "texts": ["hello"], "input_type": "search_query", "embedding_types": ["float", "int8"]}))]
pub struct CohereEmbedRequest {
    /// A model this server may serve; the default model when unset (Cohere's SDK always sends
    /// one: name the served model's id).
    pub model: Option<String>,
    /// The texts, answered in order.
    pub texts: Vec<String>,
    /// What the texts are for: picks the model's prompt (required by v2).
    pub input_type: Option<CohereInputType>,
    /// The types to answer in; `float` when unset.
    pub embedding_types: Option<Vec<EmbeddingType>>,
    /// Keep the first `output_dimension` values of each vector (Matryoshka).
    #[schema(minimum = 1)]
    pub output_dimension: Option<usize>,
    /// Cohere's cap on tokens per input: accepted; the model's maximum applies.
    #[allow(dead_code)]
    pub max_tokens: Option<usize>,
    /// Over-long inputs: cut at the end (default), at the start, or refused (`NONE`).
    #[serde(default)]
    pub truncate: CohereTruncate,
    /// Cohere's priority: accepted; the lanes decide.
    #[allow(dead_code)]
    pub priority: Option<i64>,
}

/// A response's vectors.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum CohereVectors {
    /// By type (v2, and v1 with `embedding_types`).
    ByType(EmbeddingsByType),
    /// v1's plain f32 vectors, in input order.
    Floats(Vec<Vec<f32>>),
}

/// The API version a response answers in.
#[derive(Debug, Serialize, ToSchema)]
pub struct CohereApiVersion {
    /// `1` or `2`.
    pub version: String,
}

/// What a request cost.
#[derive(Debug, Serialize, ToSchema)]
pub struct CohereBilledUnits {
    /// Tokens of every input.
    pub input_tokens: usize,
}

/// A response's facts.
#[derive(Debug, Serialize, ToSchema)]
pub struct CohereMeta {
    /// Its version.
    pub api_version: CohereApiVersion,
    /// Its cost.
    pub billed_units: CohereBilledUnits,
}

/// `POST /v2/embed` response, and `/v1/embed`'s with `embedding_types`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CohereEmbedResponse {
    /// The request's id (its `x-request-id`).
    pub id: String,
    /// `embeddings_by_type`, or v1's `embeddings_floats` without `embedding_types`.
    pub response_type: &'static str,
    /// The vectors: by type, or v1's plain floats.
    pub embeddings: CohereVectors,
    /// The texts, in order.
    pub texts: Vec<String>,
    /// Version and cost.
    pub meta: CohereMeta,
}

/// Embed texts (Cohere v2).
#[utoipa::path(
    post,
    path = EMBED_V2,
    tag = "cohere",
    request_body = CohereEmbedRequest,
    responses((status = 200, description = "the vectors by type", body = CohereEmbedResponse), OpenAiError),
)]
async fn embed_v2(
    State(engine): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Body(request): Body<CohereEmbedRequest>,
) -> Result<Response, Failure> {
    embed(&engine, EMBED_V2, caller, &headers, request).await
}

/// Embed texts (Cohere v1: plain floats unless `embedding_types` is given).
#[utoipa::path(
    post,
    path = EMBED_V1,
    tag = "cohere",
    request_body = CohereEmbedRequest,
    responses((status = 200, description = "the vectors, by type with `embedding_types`", body = CohereEmbedResponse), OpenAiError),
)]
async fn embed_v1(
    State(engine): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Body(request): Body<CohereEmbedRequest>,
) -> Result<Response, Failure> {
    embed(&engine, EMBED_V1, caller, &headers, request).await
}

async fn embed(
    engine: &AppState,
    route: &str,
    caller: Caller,
    headers: &HeaderMap,
    request: CohereEmbedRequest,
) -> Result<Response, Failure> {
    // v1 answers plain floats unless the request names its types (even `["float"]`).
    let plain = route == EMBED_V1 && request.embedding_types.is_none();
    let v1 = route == EMBED_V1;
    let asked = request.embedding_types.clone().unwrap_or_else(|| vec![EmbeddingType::Float]);
    let types = EmbeddingType::outputs(&asked);
    let texts = request.texts.clone();
    let service_request = match service_request(engine, request, caller).await {
        Ok(request) => request,
        Err(error) => {
            engine.service.reject(route, &error);
            return Err(error.into());
        }
    };
    let reply = engine.service.embed_quantized(route, service_request, &types).await?;
    let headers_out = timing(reply.tokens, reply.lane, reply.timing, reply.total);
    let meta = CohereMeta {
        api_version: CohereApiVersion { version: if v1 { "1" } else { "2" }.into() },
        billed_units: CohereBilledUnits { input_tokens: reply.tokens },
    };
    let id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let (response_type, embeddings) = if plain {
        let floats: Vec<Vec<f32>> = reply.vectors.into_iter().map(|q| q.float.unwrap_or_default()).collect();
        ("embeddings_floats", CohereVectors::Floats(floats))
    } else {
        ("embeddings_by_type", CohereVectors::ByType(EmbeddingsByType::new(&reply.vectors, &asked)))
    };
    let body = CohereEmbedResponse { id, response_type, embeddings, texts, meta };
    Ok((headers_out, Json(body)).into_response())
}

/// The service request: the prompt of `input_type` when the served model has one.
async fn service_request(
    engine: &AppState,
    request: CohereEmbedRequest,
    caller: Caller,
) -> aki_core::Result<EmbedRequest> {
    if matches!(request.input_type, Some(CohereInputType::Image)) {
        return Err(aki_core::EmbedError::Validation("images are not served; send texts".into()));
    }
    let info = engine.service.model_info(request.model.as_deref()).await?;
    let served = request.model.as_deref().unwrap_or(&engine.config.model);
    let prompt = match request.input_type {
        Some(input_type) => input_type.prompt(&engine.config.input_type_prompts, served, &info.prompts)?,
        None => PromptChoice::default(),
    };
    let encode = match request.truncate {
        CohereTruncate::None => EncodeOptions { truncate: false, direction: TruncationDirection::Right },
        CohereTruncate::Start => EncodeOptions { truncate: true, direction: TruncationDirection::Left },
        CohereTruncate::End => EncodeOptions { truncate: true, direction: TruncationDirection::Right },
    };
    Ok(EmbedRequest {
        model: request.model,
        inputs: Inputs::Texts(request.texts),
        options: EmbedOptions { encode, dimensions: request.output_dimension, ..EmbedOptions::default() },
        prompt,
        deadline: None,
        caller,
    })
}
