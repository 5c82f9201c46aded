//! The Cohere family: `POST /v1/embed` and `/v2/embed` (vectors in the types asked for, the
//! prompt from `input_type`) in [`embed`], `POST /v1/rerank` (which Jina's rerank API also
//! follows) and `/v2/rerank` in [`rerank`]; failures take OpenAI's shape. Cohere's official
//! Python SDK works against them.

mod embed;
mod rerank;

// The wire types, for the document's tests.
#[cfg(test)]
pub use embed::{
    CohereApiVersion, CohereBilledUnits, CohereEmbedRequest, CohereEmbedResponse, CohereInputType, CohereMeta,
    CohereTruncate, CohereVectors,
};
#[cfg(test)]
pub use rerank::{CohereDocument, CohereRerankRequest, CohereRerankResponse, CohereResult, CohereUsage};

use utoipa_axum::router::OpenApiRouter;

use crate::family::Family;
use crate::openai;

/// The family's routes.
pub fn routes() -> Family {
    Family::new(openai::SHAPE, OpenApiRouter::new().merge(embed::routes()).merge(rerank::routes()))
}
