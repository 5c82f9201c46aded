//! TEI's `POST /embed` (one vector per input, always 2-D) and `POST /similarity` (the cosine of
//! each sentence to a source sentence, the Hugging Face `sentence-similarity` task).

use aki_core::EmbedOptions;
use aki_service::{Caller, EmbedRequest, Inputs, PromptChoice, SimilarityRequest};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{TeiDirection, TeiError, TeiInputs, encode};
use crate::app::AppState;
use crate::failure::Failure;
use crate::family::{Body, PriorityField, asking, timed, timing};

pub(super) const EMBED: &str = "/embed";
pub(super) const SIMILARITY: &str = "/similarity";

/// The routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(timed(routes!(embed))).routes(timed(routes!(similarity)))
}

/// `POST /embed` request (TEI).
#[derive(Debug, Deserialize, ToSchema)]
pub struct TeiEmbedRequest {
    /// What to embed; the reply is 2-D even for one text.
    pub inputs: TeiInputs,
    /// Scale each vector to unit length.
    #[schema(default = true)]
    pub normalize: Option<bool>,
    /// Cut inputs longer than the model's maximum; off, as in TEI, such an input is a 422.
    #[schema(default = false)]
    pub truncate: Option<bool>,
    /// Which side `truncate` cuts.
    #[serde(default)]
    #[schema(default = "Right")]
    pub truncation_direction: TeiDirection,
    /// Keep the first `dimensions` values of each vector (Matryoshka), then normalise.
    #[schema(minimum = 1)]
    pub dimensions: Option<usize>,
    /// One of the model's named prompts (`config_sentence_transformers.json`), put before each
    /// text; the model's default prompt applies when unset.
    pub prompt_name: Option<String>,
    /// The lane to wait in: `interactive` (search queries) or `bulk` (indexing); by size when
    /// unset or `auto`. Over the `x-priority` header.
    pub priority: Option<PriorityField>,
}

impl TeiEmbedRequest {
    /// The service request, TEI's defaults: normalised, and not truncated (an over-long input
    /// is an error).
    fn into_request(self, caller: Caller) -> EmbedRequest {
        EmbedRequest {
            model: None,
            inputs: Inputs::Texts(self.inputs.into_vec()),
            options: EmbedOptions {
                normalize: Some(self.normalize.unwrap_or(true)),
                encode: encode(self.truncate, self.truncation_direction),
                dimensions: self.dimensions,
                ..EmbedOptions::default()
            },
            prompt: PromptChoice { name: self.prompt_name, text: None },
            deadline: None,
            caller: asking(caller, self.priority),
        }
    }
}

/// Embed (TEI-compatible).
#[utoipa::path(
    post,
    path = EMBED,
    tag = "tei",
    request_body = TeiEmbedRequest,
    responses(
        (status = 200, description = "one vector per input, always 2-D", body = Vec<Vec<f32>>),
        TeiError,
    ),
)]
async fn embed(
    State(engine): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(request): Body<TeiEmbedRequest>,
) -> Result<Response, Failure> {
    answer_embed(&engine, EMBED, caller, request).await
}

/// `POST /embed`'s answer, under the route it came by.
pub(super) async fn answer_embed(
    engine: &AppState,
    route: &str,
    caller: Caller,
    request: TeiEmbedRequest,
) -> Result<Response, Failure> {
    let reply = engine.service.embed(route, request.into_request(caller)).await?;
    Ok((timing(reply.tokens, reply.lane, reply.timing, reply.total), Json(reply.vectors)).into_response())
}

/// The texts of a `POST /similarity` request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TeiSimilarityInputs {
    /// What the sentences are compared with.
    pub source_sentence: String,
    /// The sentences, one score each, in order.
    pub sentences: Vec<String>,
}

/// The options of a `POST /similarity` request.
#[derive(Debug, Deserialize, ToSchema, Default)]
pub struct TeiSimilarityParameters {
    /// Cut inputs longer than the model's maximum; off, as in TEI, such an input is a 422.
    #[schema(default = false)]
    pub truncate: Option<bool>,
    /// Which side `truncate` cuts.
    #[serde(default)]
    #[schema(default = "Right")]
    pub truncation_direction: TeiDirection,
    /// One of the model's named prompts, put before each text.
    pub prompt_name: Option<String>,
}

/// `POST /similarity` request (TEI; the Hugging Face `sentence-similarity` task's payload).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"inputs": {"source_sentence": "A man is eating food.", "sentences": ["A man eats.", "A dog runs."]}}))]
pub struct TeiSimilarityRequest {
    /// The source sentence and the sentences.
    pub inputs: TeiSimilarityInputs,
    /// Truncation and prompt.
    pub parameters: Option<TeiSimilarityParameters>,
    /// The lane to wait in: `interactive` (search queries) or `bulk` (indexing); by size when
    /// unset or `auto`. Over the `x-priority` header.
    pub priority: Option<PriorityField>,
}

/// The cosine similarity of each sentence to the source sentence (TEI-compatible).
#[utoipa::path(
    post,
    path = SIMILARITY,
    tag = "tei",
    request_body = TeiSimilarityRequest,
    responses((status = 200, description = "one cosine similarity per sentence, in order", body = Vec<f32>), TeiError),
)]
async fn similarity(
    State(engine): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(request): Body<TeiSimilarityRequest>,
) -> Result<Response, Failure> {
    answer_similarity(&engine, SIMILARITY, caller, request).await
}

/// `POST /similarity`'s answer, under the route it came by.
pub(super) async fn answer_similarity(
    engine: &AppState,
    route: &str,
    caller: Caller,
    request: TeiSimilarityRequest,
) -> Result<Response, Failure> {
    let parameters = request.parameters.unwrap_or_default();
    let request = SimilarityRequest {
        model: None,
        source: request.inputs.source_sentence,
        sentences: request.inputs.sentences,
        encode: encode(parameters.truncate, parameters.truncation_direction),
        prompt: PromptChoice { name: parameters.prompt_name, text: None },
        deadline: None,
        caller: asking(caller, request.priority),
    };
    let reply = engine.service.similarity(route, request).await?;
    let embedded = &reply.embedded;
    let headers = timing(embedded.tokens, embedded.lane, embedded.timing, embedded.total);
    Ok((headers, Json(reply.scores)).into_response())
}
