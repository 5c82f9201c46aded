//! Cohere's `POST /v1/rerank` (which Jina's rerank API also follows) and `/v2/rerank`: their wire
//! types and handlers. Cohere's official Python SDK (`Client.rerank`, `ClientV2.rerank`) works
//! against them.

use aki_core::EncodeOptions;
use aki_service::{Caller, RerankReply, RerankRequest};
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

const RERANK_V1: &str = "/v1/rerank";
const RERANK_V2: &str = "/v2/rerank";

/// The routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(timed(routes!(rerank_v1))).routes(timed(routes!(rerank_v2)))
}

/// A document: a string, or `{"text": ...}` as Jina and Cohere also take.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum RerankDocument {
    /// The text itself.
    Text(String),
    /// The text in an object.
    Object {
        /// The text.
        text: String,
    },
}

/// `POST /v1/rerank` and `/v2/rerank` request (Cohere and Jina).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"query": "What is the capital of France?", "documents": ["Paris is the capital of France.", "Berlin is in Germany."], "top_n": 1}))]
pub struct CohereRerankRequest {
    /// A model this server may serve; the default model when unset.
    pub model: Option<String>,
    /// What the documents are ranked against.
    pub query: String,
    /// The candidates; over-long pairs are cut, as Cohere and Jina do.
    pub documents: Vec<RerankDocument>,
    /// Keep only the best `top_n`; all when unset.
    #[schema(minimum = 1)]
    pub top_n: Option<usize>,
    /// Put each document in its result (Cohere v1 and Jina; v2 takes it too).
    #[serde(default)]
    #[schema(default = false)]
    pub return_documents: bool,
    /// Cohere's cap on tokens per document: accepted; the model's maximum applies.
    #[allow(dead_code)]
    pub max_tokens_per_doc: Option<usize>,
}

impl CohereRerankRequest {
    /// The service request and the documents when the reply must carry them.
    fn into_request(self) -> (RerankRequest, Option<Vec<String>>) {
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
            caller: Caller::default(),
        };
        (request, kept)
    }
}

/// `POST /v1/rerank` and `/v2/rerank` response.
#[derive(Debug, Serialize, ToSchema)]
pub struct CohereRerankResponse {
    /// The request's id (its `x-request-id`).
    pub id: String,
    /// The model that answered.
    pub model: String,
    /// The documents, best first.
    pub results: Vec<CohereResult>,
    /// What the request cost.
    pub usage: CohereUsage,
}

/// One ranked document.
#[derive(Debug, Serialize, ToSchema)]
pub struct CohereResult {
    /// The document's position in the request.
    pub index: usize,
    /// Its relevance, a sigmoid probability.
    pub relevance_score: f32,
    /// The document, with `return_documents`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<CohereDocument>,
}

/// A document as a result carries it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CohereDocument {
    /// Its text.
    pub text: String,
}

/// What a rerank request cost.
#[derive(Debug, Serialize, ToSchema)]
pub struct CohereUsage {
    /// Tokens processed over all pairs.
    pub total_tokens: usize,
}

impl CohereRerankResponse {
    /// The response to a request with id `id`, with each document when they were kept.
    fn new(id: String, reply: RerankReply, documents: Option<Vec<String>>) -> Self {
        let document = |index: usize| {
            documents.as_ref().and_then(|d| d.get(index)).map(|text| CohereDocument { text: text.clone() })
        };
        let results = reply
            .ranked
            .iter()
            .map(|r| CohereResult { index: r.index, relevance_score: r.score, document: document(r.index) })
            .collect();
        Self { id, model: reply.model, results, usage: CohereUsage { total_tokens: reply.tokens } }
    }
}

/// Rerank documents against a query (Cohere and Jina compatible).
#[utoipa::path(
    post,
    path = RERANK_V1,
    tag = "cohere",
    request_body = CohereRerankRequest,
    responses(
        (status = 200, description = "the documents, best first", body = CohereRerankResponse),
        OpenAiError,
    ),
)]
async fn rerank_v1(
    State(engine): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Body(request): Body<CohereRerankRequest>,
) -> Result<Response, Failure> {
    rerank(&engine, RERANK_V1, caller, &headers, request).await
}

/// Rerank documents against a query (Cohere v2: the same body and answer as v1).
#[utoipa::path(
    post,
    path = RERANK_V2,
    tag = "cohere",
    request_body = CohereRerankRequest,
    responses(
        (status = 200, description = "the documents, best first", body = CohereRerankResponse),
        OpenAiError,
    ),
)]
async fn rerank_v2(
    State(engine): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Body(request): Body<CohereRerankRequest>,
) -> Result<Response, Failure> {
    rerank(&engine, RERANK_V2, caller, &headers, request).await
}

/// Either version: the two take the same body and answer the same shape.
async fn rerank(
    engine: &AppState,
    route: &str,
    caller: Caller,
    headers: &HeaderMap,
    request: CohereRerankRequest,
) -> Result<Response, Failure> {
    let (request, documents) = request.into_request();
    let reply = engine.service.rerank(route, RerankRequest { caller, ..request }).await?;
    let id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let timing = timing(reply.tokens, reply.lane, reply.timing, reply.total);
    Ok((timing, Json(CohereRerankResponse::new(id, reply, documents))).into_response())
}
