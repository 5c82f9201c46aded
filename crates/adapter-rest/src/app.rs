//! The router: `app(engine)` serves every API family (each a module: `native`, `openai`, `tei`,
//! `cohere`, `ops`) under the layers all routes share: the failure log, the body limit, tracing,
//! request ids and CORS.

use std::sync::Arc;

use aki_wiring::Engine;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use utoipa_axum::router::OpenApiRouter;

use crate::family::Family;
use crate::{cohere, failure, native, openai, ops, tei};

/// Shared state of the handlers.
pub type AppState = Arc<Engine>;

/// Every API family, as the router serves them and the OpenAPI document describes them.
pub fn families() -> [Family; 5] {
    [native::routes(), openai::routes(), tei::routes(), cohere::routes(), ops::routes()]
}

/// The router with every route, limit and layer.
pub fn app(engine: AppState) -> Router {
    let routes = families().into_iter().fold(OpenApiRouter::new(), |all, family| all.merge(family.serve(&engine)));
    let (routes, _) = routes.split_for_parts();
    let request_id = HeaderName::from_static("x-request-id");
    let mut router = routes
        .layer(middleware::map_response(failure::log))
        .layer(DefaultBodyLimit::max(engine.config.limits.body_limit_bytes))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    let (method, path) = (request.method(), request.uri().path());
                    // Named by its route, so unknown paths do not make span names without end.
                    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str);
                    let span = tracing::info_span!(
                        "request",
                        otel.name = %format_args!("{method} {route}"),
                        otel.kind = "server",
                        method = %method,
                        path = %path,
                        request_id = %id,
                        status = tracing::field::Empty,
                    );
                    aki_wiring::continue_caller_trace(&span, request.headers());
                    span
                })
                .on_response(|response: &axum::http::Response<_>, _latency, span: &tracing::Span| {
                    span.record("status", response.status().as_u16());
                })
                // Failures are logged once, with their cause, by `failure::log`; 503 while
                // loading is expected, not an error.
                .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid));
    if !engine.config.cors_allow_origins.is_empty() {
        router = router.layer(cors(&engine.config.cors_allow_origins));
    }
    router.with_state(engine)
}

fn cors(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
}
