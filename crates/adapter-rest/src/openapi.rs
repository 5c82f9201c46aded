//! The OpenAPI 3.1 document, served at `/openapi.json`: generated from the families' routes (each
//! handler's `#[utoipa::path]`) and wire types (their `ToSchema` derives), so a field or a route
//! added to the code is in the document without anyone editing it.

use std::sync::LazyLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::native::NativeError;
use crate::openai::OpenAiError;
use crate::tei::TeiError;

/// What the generated paths do not say: the title, the bearer key, the tags, the error shapes
/// (which `IntoResponses` refers to by name).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "aki-embed REST API",
        description = "Sentence embeddings and cross-encoder reranking: a native route, OpenAI-, TEI- and \
            Cohere/Jina-compatible routes. API routes need `Authorization: Bearer <key>` when an API key is \
            configured; health, ready, metrics and this document stay open. Embedding and rerank replies carry \
            TEI's timing headers; every reply carries `x-request-id` (generated, or the client's)."
    ),
    modifiers(&Bearer),
    security(("bearer" = [])),
    components(schemas(NativeError, OpenAiError, TeiError)),
    tags(
        (name = "native", description = "aki-embed's own route"),
        (name = "openai", description = "OpenAI's embeddings API; errors in OpenAI's shape"),
        (name = "tei", description = "Hugging Face text-embeddings-inference; errors in TEI's shape"),
        (name = "cohere", description = "Cohere's and Jina's rerank API; errors in OpenAI's shape"),
        (name = "ops", description = "model facts, probes, metrics and this document"),
    ),
)]
struct Frame;

/// The `bearer` security scheme.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        openapi.components.get_or_insert_default().add_security_scheme("bearer", scheme);
    }
}

/// The document of every family's routes.
pub fn document() -> utoipa::openapi::OpenApi {
    let families = crate::app::families();
    let routes = families
        .into_iter()
        .fold(OpenApiRouter::with_openapi(Frame::openapi()), |all, family| all.merge(family.documented()));
    let mut document = routes.into_openapi();
    document.info.version = env!("CARGO_PKG_VERSION").to_string();
    document
}

/// The document as served, built once.
pub fn json() -> &'static str {
    static JSON: LazyLock<String> = LazyLock::new(|| {
        document().to_pretty_json().unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}).to_string())
    });
    &JSON
}

#[cfg(test)]
mod tests;
