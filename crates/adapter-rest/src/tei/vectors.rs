//! TEI's `POST /embed_sparse` (a SPLADE model's vectors as `{index, value}` pairs) and
//! `POST /embed_all` (the vector of every token, 3-D), through the embedding flow.

use aki_core::EmbedOptions;
use aki_service::{Caller, EmbedRequest, Inputs, PromptChoice};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{TeiDirection, TeiError, TeiInputs, encode};
use crate::app::AppState;
use crate::failure::Failure;
use crate::family::{Body, PriorityField, asking, timed, timing};

pub(super) const EMBED_SPARSE: &str = "/embed_sparse";
pub(super) const EMBED_ALL: &str = "/embed_all";

/// The routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(timed(routes!(embed_sparse))).routes(timed(routes!(embed_all)))
}

/// `POST /embed_sparse` and `POST /embed_all` request (TEI): `/embed`'s fields less
/// `normalize` and `dimensions`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TeiEmbedPlainRequest {
    /// What to embed; the reply has one entry per input even for one text.
    pub inputs: TeiInputs,
    /// Cut inputs longer than the model's maximum; off, as in TEI, such an input is a 422.
    #[schema(default = false)]
    pub truncate: Option<bool>,
    /// Which side `truncate` cuts.
    #[serde(default)]
    #[schema(default = "Right")]
    pub truncation_direction: TeiDirection,
    /// One of the model's named prompts, put before each text; the model's default prompt
    /// applies when unset.
    pub prompt_name: Option<String>,
    /// The lane to wait in: `interactive` (search queries) or `bulk` (indexing); by size when
    /// unset or `auto`. Over the `x-priority` header.
    pub priority: Option<PriorityField>,
}

impl TeiEmbedPlainRequest {
    fn into_request(self, caller: Caller) -> EmbedRequest {
        EmbedRequest {
            model: None,
            inputs: Inputs::Texts(self.inputs.into_vec()),
            options: EmbedOptions {
                normalize: Some(false),
                encode: encode(self.truncate, self.truncation_direction),
                dimensions: None,
                ..EmbedOptions::default()
            },
            prompt: PromptChoice { name: self.prompt_name, text: None },
            deadline: None,
            caller: asking(caller, self.priority),
        }
    }
}

/// One non-zero entry of a sparse vector: its vocabulary index and weight.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeiSparseValue {
    /// The vocabulary entry.
    pub index: usize,
    /// Its weight.
    pub value: f32,
}

/// Sparse vectors of a SPLADE model (TEI-compatible).
#[utoipa::path(
    post,
    path = EMBED_SPARSE,
    tag = "tei",
    request_body = TeiEmbedPlainRequest,
    responses(
        (status = 200, description = "per input, its non-zero entries in index order", body = Vec<Vec<TeiSparseValue>>),
        TeiError,
    ),
)]
async fn embed_sparse(
    State(engine): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(request): Body<TeiEmbedPlainRequest>,
) -> Result<Response, Failure> {
    answer_sparse(&engine, EMBED_SPARSE, caller, request).await
}

/// `POST /embed_sparse`'s answer, under the route it came by.
pub(super) async fn answer_sparse(
    engine: &AppState,
    route: &str,
    caller: Caller,
    request: TeiEmbedPlainRequest,
) -> Result<Response, Failure> {
    let reply = engine.service.embed_sparse(route, request.into_request(caller)).await?;
    let headers = timing(reply.tokens, reply.lane, reply.timing, reply.total);
    let sparse: Vec<Vec<TeiSparseValue>> = reply
        .vectors
        .into_iter()
        .map(|v| v.into_iter().map(|(index, value)| TeiSparseValue { index, value }).collect())
        .collect();
    Ok((headers, Json(sparse)).into_response())
}

/// The vector of every token, special tokens included, before pooling (TEI-compatible).
#[utoipa::path(
    post,
    path = EMBED_ALL,
    tag = "tei",
    request_body = TeiEmbedPlainRequest,
    responses(
        (status = 200, description = "per input, one vector per token", body = Vec<Vec<Vec<f32>>>),
        TeiError,
    ),
)]
async fn embed_all(
    State(engine): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(request): Body<TeiEmbedPlainRequest>,
) -> Result<Response, Failure> {
    let reply = engine.service.embed_all(EMBED_ALL, request.into_request(caller)).await?;
    let headers = timing(reply.tokens, reply.lane, reply.timing, reply.total);
    Ok((headers, Json(reply.vectors)).into_response())
}
