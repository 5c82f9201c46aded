//! TEI's `POST /` and `POST /invocations` (SageMaker's route): the served model's own task, so
//! a client that knows only the server's URL (`huggingface_hub.InferenceClient(model=URL)`)
//! works. An embedder answers `/embed`, or `/similarity` when `inputs` holds a
//! `source_sentence` (TEI needs its `TASK` variable for that); a SPLADE model answers
//! `/embed_sparse`; a classifier answers
//! `/predict`; a reranker `/rerank` when the body has a `query`, else `/predict`.

use aki_core::{EmbedError, ModelTask};
use aki_service::Caller;
use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::classify::{TeiPredictRequest, TeiRerankRequest, answer_predict, answer_rerank};
use super::embed::{TeiEmbedRequest, TeiSimilarityRequest, answer_embed, answer_similarity};
use super::vectors::{TeiEmbedPlainRequest, answer_sparse};
use super::{TeiError, from_json};
use crate::app::AppState;
use crate::failure::Failure;
use crate::family::{Body, timed};

const ROOT: &str = "/";
const INVOCATIONS: &str = "/invocations";

/// The routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(timed(routes!(root))).routes(timed(routes!(invocations)))
}

/// The served model's task: `/embed` or `/similarity` for embedders, `/embed_sparse` for
/// SPLADE models, `/predict` for
/// classifiers, `/rerank` (or `/predict`) for rerankers, by the body (TEI-compatible).
#[utoipa::path(
    post,
    path = ROOT,
    tag = "tei",
    request_body(content = Object, description = "the body of the route the model's task picks"),
    responses((status = 200, description = "that route's answer"), TeiError),
)]
async fn root(
    State(engine): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(body): Body<Value>,
) -> Result<Response, Failure> {
    by_task(&engine, ROOT, caller, body).await
}

/// `POST /` under SageMaker's name (TEI-compatible).
#[utoipa::path(
    post,
    path = INVOCATIONS,
    tag = "tei",
    request_body(content = Object, description = "the body of the route the model's task picks"),
    responses((status = 200, description = "that route's answer"), TeiError),
)]
async fn invocations(
    State(engine): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(body): Body<Value>,
) -> Result<Response, Failure> {
    by_task(&engine, INVOCATIONS, caller, body).await
}

async fn by_task(engine: &AppState, route: &str, caller: Caller, body: Value) -> Result<Response, Failure> {
    let info = match engine.service.served().await {
        Ok(info) => info,
        Err(error) => {
            engine.service.reject(route, &error);
            return Err(error.into());
        }
    };
    let parsed = |failure: Failure| {
        engine.service.reject(route, &EmbedError::Validation(failure.message().to_string()));
        failure
    };
    match info.task {
        ModelTask::Embed if body.get("inputs").is_some_and(Value::is_object) => {
            let request: TeiSimilarityRequest = from_json(body).map_err(parsed)?;
            answer_similarity(engine, route, caller, request).await
        }
        ModelTask::Embed if info.is_splade() => {
            let request: TeiEmbedPlainRequest = from_json(body).map_err(parsed)?;
            answer_sparse(engine, route, caller, request).await
        }
        ModelTask::Embed => {
            let request: TeiEmbedRequest = from_json(body).map_err(parsed)?;
            answer_embed(engine, route, caller, request).await
        }
        ModelTask::Rerank if info.is_reranker() && body.get("query").is_some() => {
            let request: TeiRerankRequest = from_json(body).map_err(parsed)?;
            answer_rerank(engine, route, caller, request).await
        }
        ModelTask::Rerank => {
            let request: TeiPredictRequest = from_json(body).map_err(parsed)?;
            answer_predict(engine, route, caller, request).await
        }
    }
}
