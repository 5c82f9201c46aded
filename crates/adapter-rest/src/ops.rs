//! The operations family: `GET /info` (behind the API key, failures in the native shape), and
//! the open probes `GET /health`, `/ready`, `/metrics` and `/openapi.json`; their wire types and
//! handlers.

use std::collections::BTreeMap;

use aki_core::{ModelTask, Pooling};
use aki_service::ServerInfo;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::failure::Failure;
use crate::family::{Family, UNAUTHORIZED};
use crate::native::{self, NativeError};

const INFO: &str = "/info";

/// The family's routes.
pub fn routes() -> Family {
    let open = OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ping))
        .routes(routes!(ready))
        .routes(routes!(metrics))
        .routes(routes!(openapi));
    Family::new(native::SHAPE, OpenApiRouter::new().routes(routes!(info))).with_open(open)
}

/// `GET /info` response: the default model and the server's limits.
#[derive(Debug, Serialize, ToSchema)]
pub struct InfoResponse {
    /// The default model's id.
    #[schema(example = "sentence-transformers/all-MiniLM-L6-v2")]
    pub model_id: String,
    /// The length of its vectors.
    pub dimension: usize,
    /// The most tokens of one input.
    pub max_input_tokens: usize,
    /// How token vectors become one.
    pub pooling: PoolingName,
    /// Whether its vectors are normalised by default.
    pub normalize: bool,
    /// The weights' type as computed (`f32`, `f16`, `bf16`).
    pub dtype: String,
    /// Where it runs (`cpu`, `cuda:0`, `metal`).
    pub device: String,
    /// The model family (`bert`, `xlm-roberta`, `modernbert`, `qwen3`).
    pub architecture: String,
    /// What the model does.
    pub task: TaskName,
    /// Which implementation runs it (`packed cpu (...)`, `candle-transformers`).
    pub engine: String,
    /// Its named prompts (`config_sentence_transformers.json`), by name.
    pub prompts: BTreeMap<String, String>,
    /// The prompt used when a request names none.
    #[schema(required = true)]
    pub default_prompt_name: Option<String>,
    /// The most inputs per model call.
    pub max_batch_size: usize,
    /// The most tokens per model call.
    pub max_batch_tokens: usize,
    /// Model calls in flight at once.
    pub max_concurrent_batches: usize,
    /// The most sequences per forward pass.
    pub max_forward_batch: usize,
    /// The most inputs a client may send in one request.
    pub max_client_batch_size: usize,
    /// The model ids requests may name, the default first.
    pub models: Vec<String>,
    /// The server's version.
    pub version: &'static str,
    /// TEI's name of the default model, which TEI's tooling reads: `model_id`.
    pub served_model_name: String,
    /// The revision of the model's files (TEI); null: not known.
    #[schema(required = true)]
    pub model_sha: Option<String>,
    /// The weights' type as TEI names it (`float32`, `float16`, `bfloat16`).
    pub model_dtype: String,
    /// What the model is, as TEI says it: `{"embedding": {"pooling"}}`, `{"classifier":
    /// {"id2label", "label2id"}}` or `{"reranker": {...}}`.
    pub model_type: TeiModelType,
    /// Requests served at once (TEI; `limits.max_concurrent_requests`).
    pub max_concurrent_requests: usize,
    /// The most tokens of one input (TEI's name of `max_input_tokens`).
    pub max_input_length: usize,
    /// The most inputs per model call (TEI's name of `max_batch_size`).
    pub max_batch_requests: usize,
    /// Whether over-long inputs are cut when a request does not say (TEI): never.
    pub auto_truncate: bool,
    /// Threads that tokenize a request's texts in parallel (TEI).
    pub tokenization_workers: usize,
    /// The server build's revision (TEI); null.
    #[schema(required = true)]
    pub sha: Option<String>,
    /// The container image label (TEI); null.
    #[schema(required = true)]
    pub docker_label: Option<String>,
}

/// TEI's `model_type`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TeiModelType {
    /// An embedder, with its pooling (`mean`, `cls`, `max`, `last_token`).
    Embedding {
        /// How token vectors become one.
        pooling: String,
    },
    /// A sequence classifier with several labels (`/predict`).
    Classifier(TeiLabels),
    /// A cross-encoder with one label (`/rerank`).
    Reranker(TeiLabels),
}

/// A classifier's labels, both ways.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeiLabels {
    /// Label names by output index (as a string, as in `config.json`).
    pub id2label: BTreeMap<String, String>,
    /// Output indices by label name.
    pub label2id: BTreeMap<String, usize>,
}

impl TeiModelType {
    fn of(model: &aki_core::ModelInfo) -> Self {
        let labels = || TeiLabels {
            id2label: model.labels.iter().enumerate().map(|(i, l)| (i.to_string(), l.clone())).collect(),
            label2id: model.labels.iter().enumerate().map(|(i, l)| (l.clone(), i)).collect(),
        };
        match model.task {
            ModelTask::Embed => {
                let pooling = match model.pooling {
                    Pooling::Mean => "mean",
                    Pooling::Cls => "cls",
                    Pooling::Max => "max",
                    Pooling::LastToken => "last_token",
                    Pooling::Splade => "splade",
                };
                Self::Embedding { pooling: pooling.to_string() }
            }
            ModelTask::Rerank if model.is_reranker() => Self::Reranker(labels()),
            ModelTask::Rerank => Self::Classifier(labels()),
        }
    }
}

impl From<ServerInfo> for InfoResponse {
    fn from(info: ServerInfo) -> Self {
        let model = info.model;
        let (model_type, task) = (TeiModelType::of(&model), TaskName::of(&model));
        Self {
            served_model_name: model.model_id.clone(),
            model_sha: None,
            model_dtype: model.torch_dtype().to_string(),
            model_type,
            max_concurrent_requests: info.max_concurrent_requests,
            max_input_length: model.max_input_tokens,
            max_batch_requests: info.batching.max_batch_size,
            auto_truncate: false,
            tokenization_workers: info.tokenization_workers,
            sha: None,
            docker_label: None,
            model_id: model.model_id,
            dimension: model.dimension,
            max_input_tokens: model.max_input_tokens,
            pooling: model.pooling.into(),
            normalize: model.normalize_default,
            dtype: model.dtype,
            device: model.device,
            architecture: model.architecture,
            task,
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

/// How a model pools token vectors, as sentence-transformers names it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PoolingName {
    /// The mean of the kept tokens.
    Mean,
    /// The first token (`[CLS]`).
    Cls,
    /// The element-wise maximum of the kept tokens.
    Max,
    /// The last kept token (decoder embedders).
    LastToken,
    /// SPLADE: per vocabulary entry, the maximum of `log(1 + ReLU(logit))` over the tokens.
    Splade,
}

impl From<Pooling> for PoolingName {
    fn from(pooling: Pooling) -> Self {
        match pooling {
            Pooling::Mean => Self::Mean,
            Pooling::Cls => Self::Cls,
            Pooling::Max => Self::Max,
            Pooling::LastToken => Self::LastToken,
            Pooling::Splade => Self::Splade,
        }
    }
}

/// What a model does.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskName {
    /// An embedder: the embedding routes serve it.
    Embed,
    /// A cross-encoder (one label): the rerank routes serve it, and `/predict`.
    Rerank,
    /// A sequence classifier (several labels): `/predict` serves it.
    Classify,
}

impl TaskName {
    fn of(model: &aki_core::ModelInfo) -> Self {
        match model.task {
            ModelTask::Embed => Self::Embed,
            ModelTask::Rerank if model.is_reranker() => Self::Rerank,
            ModelTask::Rerank => Self::Classify,
        }
    }
}

/// `"ok"`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Alive {
    /// The process serves.
    Ok,
}

/// `GET /health` response.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `"ok"`.
    pub status: Alive,
}

/// Whether the server takes work.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Readiness {
    /// The default model is loaded and warm.
    Ready,
    /// Still loading, or draining for a shutdown.
    Unavailable,
}

/// `GET /ready` response.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ready`, or `unavailable` with a 503.
    pub status: Readiness,
}

/// Model and server facts.
#[utoipa::path(
    get,
    path = INFO,
    tag = "ops",
    responses(
        (status = 200, description = "the default model and the limits", body = InfoResponse),
        (status = 401, description = UNAUTHORIZED, body = NativeError),
        (status = 503, description = "the model is still loading", body = NativeError),
    ),
)]
async fn info(State(engine): State<AppState>) -> Result<Json<InfoResponse>, Failure> {
    Ok(Json(engine.service.info(INFO).await?.into()))
}

/// Liveness: 200 while the process serves.
#[utoipa::path(get, path = "/health", tag = "ops", security(()), responses((status = 200, body = Health)))]
async fn health() -> Json<Health> {
    Json(Health { status: Alive::Ok })
}

/// Liveness at SageMaker's path (`GET /ping`, as TEI serves it beside `POST /invocations`).
#[utoipa::path(get, path = "/ping", tag = "ops", security(()), responses((status = 200, body = Health)))]
async fn ping() -> Json<Health> {
    health().await
}

/// Readiness: 200 once the default model is loaded and warmed.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "ops",
    security(()),
    responses(
        (status = 200, description = "ready", body = Ready),
        (status = 503, description = "still loading, or draining for a shutdown", body = Ready),
    ),
)]
async fn ready(State(engine): State<AppState>) -> Response {
    if engine.is_ready() {
        Json(Ready { status: Readiness::Ready }).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(Ready { status: Readiness::Unavailable })).into_response()
    }
}

/// Prometheus metrics (`aki_` names).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    security(()),
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")),
)]
async fn metrics(State(engine): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], engine.render_metrics()).into_response()
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "ops",
    security(()),
    responses((status = 200, description = "the OpenAPI 3.1 document", body = Object)),
)]
async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], crate::openapi::json()).into_response()
}
