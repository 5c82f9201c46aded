//! The Hugging Face text-embeddings-inference (TEI) family: every TEI model route with TEI's
//! wire types and defaults (`truncate: false` among them), and TEI's error shape
//! `{"error", "error_type"}`. Embeddings and similarity in [`embed`], sparse and token vectors
//! in [`vectors`], predict and rerank in [`classify`], tokenize and decode in [`tokens`], and
//! `POST /` by the model's task in [`root`]; what they share here.

mod classify;
mod embed;
mod root;
mod tokens;
mod vectors;

// The wire types, for the document's tests.
#[cfg(test)]
pub use classify::{TeiPredictRequest, TeiPrediction, TeiRank, TeiRerankRequest};
#[cfg(test)]
pub use embed::{TeiEmbedRequest, TeiSimilarityInputs, TeiSimilarityParameters, TeiSimilarityRequest};
#[cfg(test)]
pub use tokens::{TeiDecodeRequest, TeiToken, TeiTokenizeRequest};
#[cfg(test)]
pub use vectors::{TeiEmbedPlainRequest, TeiSparseValue};

use aki_core::{EncodeOptions, ErrorKind, TruncationDirection};
use axum::Json;
use axum::response::IntoResponse;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::openapi::{RefOr, Response as DocResponse};
use utoipa::{IntoResponses, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use crate::failure::{Failure, Problem};
use crate::family::{ErrorShape, Family, failure_responses};

/// TEI's error shape.
const SHAPE: ErrorShape = ErrorShape(|failure| error_body(failure).into_response());

/// The family's routes.
pub fn routes() -> Family {
    let routes = [embed::routes(), vectors::routes(), classify::routes(), tokens::routes(), root::routes()];
    Family::new(SHAPE, routes.into_iter().fold(OpenApiRouter::new(), OpenApiRouter::merge))
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

/// Which side of an over-long input is cut (`Right` or `right`, `Left` or `left`, as TEI
/// reads it).
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
pub enum TeiDirection {
    /// Keep the start.
    #[default]
    #[serde(alias = "right")]
    Right,
    /// Keep the end.
    #[serde(alias = "left")]
    Left,
}

impl utoipa::PartialSchema for TeiDirection {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        let values = ["Right", "Left", "right", "left"];
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("Which side of an over-long input is cut: `Right` keeps the start, `Left` the end."))
            .enum_values(Some(values))
            .into()
    }
}

impl ToSchema for TeiDirection {}

impl From<TeiDirection> for TruncationDirection {
    fn from(direction: TeiDirection) -> Self {
        match direction {
            TeiDirection::Right => Self::Right,
            TeiDirection::Left => Self::Left,
        }
    }
}

/// TEI's `truncate` (off unless asked) and `truncation_direction`.
fn encode(truncate: Option<bool>, direction: TeiDirection) -> EncodeOptions {
    EncodeOptions { truncate: truncate.unwrap_or(false), direction: direction.into() }
}

/// A body already read as JSON, as one route's request (for `POST /`, which picks the route
/// by the model's task): the same 422 as a body that is not the route's JSON.
fn from_json<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, Failure> {
    serde_json::from_value(value).map_err(|e| {
        Failure::from(aki_core::EmbedError::Validation(format!(
            "Failed to deserialize the JSON body into the target type: {e}"
        )))
    })
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
