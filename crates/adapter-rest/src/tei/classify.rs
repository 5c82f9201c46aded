//! TEI's `POST /predict` (a sequence classifier's labels for a text, a pair or a batch of
//! either) and `POST /rerank` (texts ranked against a query by a cross-encoder).

use aki_core::ClassifierInput;
use aki_service::{Caller, PredictRequest, Prediction, RerankReply, RerankRequest};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{TeiDirection, TeiError, encode};
use crate::app::AppState;
use crate::failure::Failure;
use crate::family::{Body, PriorityField, asking, timed, timing};

pub(super) const PREDICT: &str = "/predict";
pub(super) const RERANK: &str = "/rerank";

/// The routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(timed(routes!(predict))).routes(timed(routes!(rerank)))
}

/// TEI's `predict` inputs: a text, a `[text]` or `[first, second]` pair, or a batch of those
/// (`[["a"], ["b", "c"]]`). A batch is answered with one list per input, the others with one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(example = json!("I like you. I love you"))]
pub enum TeiPredictInputs {
    /// One text.
    Text(String),
    /// One text (`[text]`) or one pair (`[first, second]`).
    One(Vec<String>),
    /// Texts and pairs, answered in order.
    Batch(Vec<Vec<String>>),
}

impl TeiPredictInputs {
    /// The inputs, and whether the answer is a batch.
    fn into_inputs(self) -> Result<(Vec<ClassifierInput>, bool), Failure> {
        let one = |mut parts: Vec<String>| match parts.len() {
            1 => Ok(ClassifierInput::Single(parts.remove(0))),
            2 => {
                let second = parts.remove(1);
                Ok(ClassifierInput::Pair(parts.remove(0), second))
            }
            n => Err(Failure::from(aki_core::EmbedError::Validation(format!(
                "an input is a text or a pair of texts, not {n} texts"
            )))),
        };
        match self {
            Self::Text(text) => Ok((vec![ClassifierInput::Single(text)], false)),
            Self::One(parts) => Ok((vec![one(parts)?], false)),
            Self::Batch(batch) => Ok((batch.into_iter().map(one).collect::<Result<_, _>>()?, true)),
        }
    }
}

/// `POST /predict` request (TEI).
#[derive(Debug, Deserialize, ToSchema)]
pub struct TeiPredictRequest {
    /// What to classify.
    pub inputs: TeiPredictInputs,
    /// Cut over-long inputs (a pair's longer part first); off, as in TEI, such an input is a
    /// 422.
    #[schema(default = false)]
    pub truncate: Option<bool>,
    /// Which side `truncate` cuts.
    #[serde(default)]
    #[schema(default = "Right")]
    pub truncation_direction: TeiDirection,
    /// The model's logits instead of probabilities.
    #[serde(default)]
    #[schema(default = false)]
    pub raw_scores: bool,
    /// The lane to wait in: `interactive` or `bulk`; by size when unset or `auto`. Over the
    /// `x-priority` header.
    pub priority: Option<PriorityField>,
}

/// One label's score (TEI).
#[derive(Debug, Serialize, ToSchema)]
pub struct TeiPrediction {
    /// Its probability (softmax over the labels; sigmoid for one label or independent labels),
    /// or its logit with `raw_scores`.
    pub score: f32,
    /// The label, from the model's `id2label`.
    pub label: String,
}

/// `POST /predict` response: each label of the input, best first; one such list per input
/// for a batch.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum TeiPredictResponse {
    /// The labels of the one input.
    One(Vec<TeiPrediction>),
    /// The labels of each input, in order.
    Batch(Vec<Vec<TeiPrediction>>),
}

/// Classify texts or pairs with a sequence classifier (TEI-compatible).
#[utoipa::path(
    post,
    path = PREDICT,
    tag = "tei",
    request_body = TeiPredictRequest,
    responses((status = 200, description = "the labels, best first", body = TeiPredictResponse), TeiError),
)]
async fn predict(
    State(engine): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(request): Body<TeiPredictRequest>,
) -> Result<Response, Failure> {
    answer_predict(&engine, PREDICT, caller, request).await
}

/// `POST /predict`'s answer, under the route it came by.
pub(super) async fn answer_predict(
    engine: &AppState,
    route: &str,
    caller: Caller,
    request: TeiPredictRequest,
) -> Result<Response, Failure> {
    let (inputs, batch) = match request.inputs.into_inputs() {
        Ok(inputs) => inputs,
        Err(failure) => {
            engine.service.reject(route, &aki_core::EmbedError::Validation(failure.message().to_string()));
            return Err(failure);
        }
    };
    let request = PredictRequest {
        model: None,
        inputs,
        encode: encode(request.truncate, request.truncation_direction),
        raw_scores: request.raw_scores,
        deadline: None,
        caller: asking(caller, request.priority),
    };
    let reply = engine.service.predict(route, request).await?;
    let headers = timing(reply.tokens, reply.lane, reply.timing, reply.total);
    let wire = |labels: Vec<Prediction>| -> Vec<TeiPrediction> {
        labels.into_iter().map(|p| TeiPrediction { score: p.score, label: p.label }).collect()
    };
    let mut each = reply.predictions.into_iter().map(wire);
    let body = if batch {
        TeiPredictResponse::Batch(each.collect())
    } else {
        TeiPredictResponse::One(each.next().unwrap_or_default())
    };
    Ok((headers, Json(body)).into_response())
}

/// `POST /rerank` request (TEI).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"query": "What is Deep Learning?", "texts": ["Deep Learning is not...", "Deep learning is..."]}))]
pub struct TeiRerankRequest {
    /// What the texts are ranked against.
    pub query: String,
    /// The candidates.
    pub texts: Vec<String>,
    /// Cut over-long pairs (the longer part first); off, as in TEI, such a pair is a 422.
    #[schema(default = false)]
    pub truncate: Option<bool>,
    /// Which side `truncate` cuts.
    #[serde(default)]
    #[schema(default = "Right")]
    pub truncation_direction: TeiDirection,
    /// The model's logits instead of sigmoid probabilities.
    #[serde(default)]
    #[schema(default = false)]
    pub raw_scores: bool,
    /// Put each text in its entry of the reply.
    #[serde(default)]
    #[schema(default = false)]
    pub return_text: bool,
    /// The lane to wait in: `interactive` (search queries) or `bulk` (indexing); by size when
    /// unset or `auto`. Over the `x-priority` header.
    pub priority: Option<PriorityField>,
}

impl TeiRerankRequest {
    /// The service request (TEI's default: not truncated), and the texts when the reply must
    /// carry them.
    fn into_request(self, caller: Caller) -> (RerankRequest, Option<Vec<String>>) {
        let texts = self.return_text.then(|| self.texts.clone());
        let request = RerankRequest {
            model: None,
            query: self.query,
            texts: self.texts,
            encode: encode(self.truncate, self.truncation_direction),
            raw_scores: self.raw_scores,
            top_n: None,
            deadline: None,
            caller: asking(caller, self.priority),
        };
        (request, texts)
    }
}

/// One entry of a `POST /rerank` response (TEI).
#[derive(Debug, Serialize, ToSchema)]
pub struct TeiRank {
    /// The text's position in the request.
    pub index: usize,
    /// The text, with `return_text`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Its relevance: a sigmoid probability, or the logit with `raw_scores`.
    pub score: f32,
}

/// A `POST /rerank` response from the reply, with each text when they were kept.
fn ranks(reply: RerankReply, texts: Option<Vec<String>>) -> Vec<TeiRank> {
    let text = |index: usize| texts.as_ref().and_then(|t| t.get(index).cloned());
    reply.ranked.into_iter().map(|r| TeiRank { index: r.index, text: text(r.index), score: r.score }).collect()
}

/// Rerank texts against a query with a cross-encoder (TEI-compatible).
#[utoipa::path(
    post,
    path = RERANK,
    tag = "tei",
    request_body = TeiRerankRequest,
    responses(
        (status = 200, description = "the texts, best first", body = Vec<TeiRank>),
        TeiError,
    ),
)]
async fn rerank(
    State(engine): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(request): Body<TeiRerankRequest>,
) -> Result<Response, Failure> {
    answer_rerank(&engine, RERANK, caller, request).await
}

/// `POST /rerank`'s answer, under the route it came by.
pub(super) async fn answer_rerank(
    engine: &AppState,
    route: &str,
    caller: Caller,
    request: TeiRerankRequest,
) -> Result<Response, Failure> {
    let (request, texts) = request.into_request(caller);
    let reply = engine.service.rerank(route, request).await?;
    let headers = timing(reply.tokens, reply.lane, reply.timing, reply.total);
    Ok((headers, Json(ranks(reply, texts))).into_response())
}
