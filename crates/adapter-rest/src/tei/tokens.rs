//! TEI's `POST /tokenize` (each input's tokens with their offsets) and `POST /decode` (the text
//! of token ids).

use aki_core::Token;
use aki_service::{DecodeRequest, PromptChoice, TokenizeRequest};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{TeiError, TeiInputs};
use crate::app::AppState;
use crate::failure::Failure;
use crate::family::Body;

const TOKENIZE: &str = "/tokenize";
const DECODE: &str = "/decode";

/// The routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(tokenize)).routes(routes!(decode))
}

/// `POST /tokenize` request (TEI).
#[derive(Debug, Deserialize, ToSchema)]
pub struct TeiTokenizeRequest {
    /// What to tokenize.
    pub inputs: TeiInputs,
    /// Include `[CLS]`, `[SEP]` and the like.
    #[schema(default = true)]
    pub add_special_tokens: Option<bool>,
    /// One of the model's named prompts, put before each text as embedding puts it; none when
    /// unset.
    pub prompt_name: Option<String>,
}

impl From<TeiTokenizeRequest> for TokenizeRequest {
    fn from(r: TeiTokenizeRequest) -> Self {
        TokenizeRequest {
            model: None,
            texts: r.inputs.into_vec(),
            add_special_tokens: r.add_special_tokens.unwrap_or(true),
            prompt: PromptChoice { name: r.prompt_name, text: None },
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

/// TEI's `ids`: one list of token ids, or many.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(example = json!([101, 7592, 2088, 102]))]
pub enum TeiIds {
    /// One text's ids.
    One(Vec<u32>),
    /// Several texts' ids, answered in order.
    Many(Vec<Vec<u32>>),
}

/// `POST /decode` request (TEI).
#[derive(Debug, Deserialize, ToSchema)]
pub struct TeiDecodeRequest {
    /// The token ids.
    pub ids: TeiIds,
    /// Leave out `[CLS]`, `[SEP]` and the like.
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub skip_special_tokens: bool,
}

fn yes() -> bool {
    true
}

/// The text of token ids (TEI-compatible).
#[utoipa::path(
    post,
    path = DECODE,
    tag = "tei",
    request_body = TeiDecodeRequest,
    responses((status = 200, description = "one text per list of ids, always a list", body = Vec<String>), TeiError),
)]
async fn decode(
    State(engine): State<AppState>,
    Body(request): Body<TeiDecodeRequest>,
) -> Result<Json<Vec<String>>, Failure> {
    let ids = match request.ids {
        TeiIds::One(ids) => vec![ids],
        TeiIds::Many(lists) => lists,
    };
    let request = DecodeRequest { model: None, ids, skip_special_tokens: request.skip_special_tokens, deadline: None };
    Ok(Json(engine.service.decode(DECODE, request).await?))
}
