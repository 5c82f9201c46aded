//! The Hugging Face text-embeddings-inference (TEI) family, `POST /embed`, `/tokenize` and
//! `/rerank`: their wire types (with TEI's defaults, `truncate: false` among them), handlers,
//! routes and TEI's error shape `{"error", "error_type"}`.

use aki_core::{EmbedOptions, EncodeOptions, ErrorKind, Token, TruncationDirection};
use aki_service::{Caller, EmbedRequest, Inputs, PromptChoice, RerankReply, RerankRequest, TokenizeRequest};
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

const EMBED: &str = "/embed";
const TOKENIZE: &str = "/tokenize";
const RERANK: &str = "/rerank";

/// The family's routes.
pub fn routes() -> Family {
    let shape = ErrorShape(|failure| error_body(failure).into_response());
    Family::new(
        shape,
        OpenApiRouter::new().routes(timed(routes!(embed))).routes(routes!(tokenize)).routes(timed(routes!(rerank))),
    )
}

/// TEI's `inputs`: one string or many.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(example = json!(["What is Deep Learning?"]))]
pub enum TeiInputs {
    /// One text.
    One(String),
    /// Texts, answered in order.
    Many(Vec<String>),
}

impl TeiInputs {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(text) => vec![text],
            Self::Many(texts) => texts,
        }
    }
}

/// Which side of an over-long input is cut.
#[derive(Debug, Deserialize, ToSchema, Default, Clone, Copy, PartialEq, Eq)]
pub enum TeiDirection {
    /// Keep the start.
    #[default]
    Right,
    /// Keep the end.
    Left,
}

impl From<TeiDirection> for TruncationDirection {
    fn from(direction: TeiDirection) -> Self {
        match direction {
            TeiDirection::Right => Self::Right,
            TeiDirection::Left => Self::Left,
        }
    }
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

impl From<TeiEmbedRequest> for EmbedRequest {
    /// TEI's defaults: normalised, and not truncated (an over-long input is an error).
    fn from(r: TeiEmbedRequest) -> Self {
        EmbedRequest {
            model: None,
            inputs: Inputs::Texts(r.inputs.into_vec()),
            options: EmbedOptions {
                normalize: Some(r.normalize.unwrap_or(true)),
                encode: EncodeOptions {
                    truncate: r.truncate.unwrap_or(false),
                    direction: r.truncation_direction.into(),
                },
                dimensions: r.dimensions,
            },
            prompt: PromptChoice { name: r.prompt_name, text: None },
            deadline: None,
            caller: Caller::default(),
        }
    }
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
    fn into_request(self) -> (RerankRequest, Option<Vec<String>>) {
        let texts = self.return_text.then(|| self.texts.clone());
        let request = RerankRequest {
            model: None,
            query: self.query,
            texts: self.texts,
            encode: EncodeOptions {
                truncate: self.truncate.unwrap_or(false),
                direction: self.truncation_direction.into(),
            },
            raw_scores: self.raw_scores,
            top_n: None,
            deadline: None,
            caller: Caller::default(),
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

/// `POST /tokenize` request (TEI).
#[derive(Debug, Deserialize, ToSchema)]
pub struct TeiTokenizeRequest {
    /// What to tokenize.
    pub inputs: TeiInputs,
    /// Include `[CLS]`, `[SEP]` and the like.
    #[schema(default = true)]
    pub add_special_tokens: Option<bool>,
}

impl From<TeiTokenizeRequest> for TokenizeRequest {
    fn from(r: TeiTokenizeRequest) -> Self {
        TokenizeRequest {
            model: None,
            texts: r.inputs.into_vec(),
            add_special_tokens: r.add_special_tokens.unwrap_or(true),
            deadline: None,
        }
    }
}

/// One token of a `/tokenize` response: TEI gives special tokens no offsets.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 7592, "text": "hello", "special": false, "start": 0, "stop": 5}))]
pub struct TeiToken {
    /// Its id in the model's vocabulary.
    pub id: u32,
    /// Its text as the vocabulary spells it (`##ing`, `[CLS]`).
    pub text: String,
    /// Whether it is a special token.
    pub special: bool,
    /// The byte offset in the input where it starts; null for special tokens.
    #[schema(required = true)]
    pub start: Option<usize>,
    /// The byte offset in the input where it ends; null for special tokens.
    #[schema(required = true)]
    pub stop: Option<usize>,
}

impl From<Token> for TeiToken {
    fn from(t: Token) -> Self {
        Self {
            id: t.id,
            special: t.special,
            start: (!t.special).then_some(t.start),
            stop: (!t.special).then_some(t.stop),
            text: t.text,
        }
    }
}

/// TEI's `error_type`.
#[derive(Debug, Serialize, ToSchema)]
pub enum TeiErrorType {
    /// A bad request: bad body, bad options, over the limits, unknown model, wrong key.
    Validation,
    /// No input at all.
    Empty,
    /// Too much work in flight or queued.
    Overloaded,
    /// The model is not ready, or the request ran out of time.
    Unhealthy,
    /// The model or the server failed.
    Backend,
}

/// A failure in TEI's shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeiError {
    /// What to fix, or (for 5xx) that the server failed.
    pub error: String,
    /// The class of the failure.
    pub error_type: TeiErrorType,
}

/// The body of `failure` in TEI's shape.
fn error_body(failure: &Failure) -> Json<TeiError> {
    let error_type = match failure.problem() {
        Problem::Kind(ErrorKind::Empty) => TeiErrorType::Empty,
        Problem::BadRequest(_)
        | Problem::Kind(ErrorKind::Unauthorized | ErrorKind::Validation | ErrorKind::NotFound) => {
            TeiErrorType::Validation
        }
        Problem::Kind(ErrorKind::Overloaded) => TeiErrorType::Overloaded,
        Problem::Kind(ErrorKind::Unavailable | ErrorKind::Timeout) => TeiErrorType::Unhealthy,
        Problem::Kind(ErrorKind::Backend | ErrorKind::Internal) => TeiErrorType::Backend,
    };
    Json(TeiError { error: failure.message().to_string(), error_type })
}

impl IntoResponses for TeiError {
    fn responses() -> std::collections::BTreeMap<String, RefOr<DocResponse>> {
        failure_responses("TeiError")
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
    let caller = asking(caller, request.priority);
    let reply = engine.service.embed(EMBED, EmbedRequest { caller, ..request.into() }).await?;
    Ok((timing(reply.tokens, reply.lane, reply.timing, reply.total), Json(reply.vectors)).into_response())
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
    let caller = asking(caller, request.priority);
    let (request, texts) = request.into_request();
    let reply = engine.service.rerank(RERANK, RerankRequest { caller, ..request }).await?;
    let headers = timing(reply.tokens, reply.lane, reply.timing, reply.total);
    Ok((headers, Json(ranks(reply, texts))).into_response())
}

/// Tokenize (TEI-compatible).
#[utoipa::path(
    post,
    path = TOKENIZE,
    tag = "tei",
    request_body = TeiTokenizeRequest,
    responses((status = 200, description = "each input's tokens", body = Vec<Vec<TeiToken>>), TeiError),
)]
async fn tokenize(
    State(engine): State<AppState>,
    Body(request): Body<TeiTokenizeRequest>,
) -> Result<Json<Vec<Vec<TeiToken>>>, Failure> {
    let tokens = engine.service.tokenize(TOKENIZE, request.into()).await?;
    Ok(Json(tokens.into_iter().map(|text| text.into_iter().map(TeiToken::from).collect()).collect()))
}
