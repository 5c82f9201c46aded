//! The routes: `app(engine)` builds the router. Every handler maps its wire DTO to a service
//! request, calls the application service, and maps the reply (or the error, in the route's
//! shape) back; the API key is checked once, by a layer on the protected routes.

use std::sync::Arc;
use std::time::Duration;

use aki_core::{EmbedError, Timing};
use aki_service::EmbedReply;
use aki_wiring::Engine;
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use crate::dto::*;
use crate::error::{Failure, Shape};

/// Shared state of the handlers.
pub type AppState = Arc<Engine>;

const NATIVE_EMBED: &str = "/api/v1/embed";
const OPENAI_EMBED: &str = "/v1/embeddings";
const OPENAI_MODELS: &str = "/v1/models";
const TEI_EMBED: &str = "/embed";
const TEI_TOKENIZE: &str = "/tokenize";
const TEI_RERANK: &str = "/rerank";
const COHERE_RERANK: &str = "/v1/rerank";
const COHERE_RERANK_V2: &str = "/v2/rerank";
const INFO: &str = "/info";

/// The router with every route, limit and layer.
pub fn app(engine: AppState) -> Router {
    let protected = Router::new()
        .route(NATIVE_EMBED, post(native_embed))
        .route(OPENAI_EMBED, post(openai_embed))
        .route(OPENAI_MODELS, get(openai_models))
        .route(TEI_EMBED, post(tei_embed))
        .route(TEI_TOKENIZE, post(tei_tokenize))
        .route(TEI_RERANK, post(tei_rerank))
        .route(COHERE_RERANK, post(cohere_rerank))
        .route(COHERE_RERANK_V2, post(cohere_rerank))
        .route(INFO, get(info))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&engine), authorize));
    let open = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi));
    let request_id = HeaderName::from_static("x-request-id");
    let mut router = protected
        .merge(open)
        .layer(DefaultBodyLimit::max(engine.config.limits.body_limit_bytes))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
                })
                // Error statuses are logged where they arise (with their cause); 503 while
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

/// The route a request matched (its path pattern).
fn route_of(request: &Request) -> String {
    request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_string()
}

/// The layer on protected routes: `Authorization: Bearer <key>` when a key is configured.
async fn authorize(State(engine): State<AppState>, request: Request, next: Next) -> Response {
    let route = route_of(&request);
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match engine.service.authorize(&route, token) {
        Ok(()) => next.run(request).await,
        Err(error) => Failure::from_core(Shape::of(&route), &error).into_response(),
    }
}

/// A route's JSON body. One that is not the route's JSON (malformed, wrong types, wrong content
/// type, too large) is answered in the route's error shape and counted by the service.
struct Body<T>(T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = Failure;

    async fn from_request(request: Request, engine: &AppState) -> Result<Self, Failure> {
        let route = route_of(&request);
        match Json::<T>::from_request(request, engine).await {
            Ok(Json(body)) => Ok(Body(body)),
            Err(rejection) => {
                engine.service.reject(&route, &EmbedError::Validation(rejection.body_text()));
                Err(Failure::from_rejection(Shape::of(&route), &rejection))
            }
        }
    }
}

/// TEI's timing headers, in milliseconds.
fn timing_headers(reply: &EmbedReply) -> [(HeaderName, String); 5] {
    timing(reply.tokens, reply.timing, reply.total)
}

fn timing(tokens: usize, timing: Timing, total: Duration) -> [(HeaderName, String); 5] {
    let ms = |d: Duration| d.as_millis().to_string();
    [
        (HeaderName::from_static("x-compute-tokens"), tokens.to_string()),
        (HeaderName::from_static("x-tokenization-time"), ms(timing.tokenize)),
        (HeaderName::from_static("x-queue-time"), ms(timing.queue)),
        (HeaderName::from_static("x-inference-time"), ms(timing.inference)),
        (HeaderName::from_static("x-total-time"), ms(total)),
    ]
}

async fn native_embed(State(engine): State<AppState>, Body(request): Body<NativeRequest>) -> Result<Response, Failure> {
    let reply = engine.service.embed(NATIVE_EMBED, request.into()).await.map_err(Failure::native)?;
    Ok((timing_headers(&reply), Json(NativeResponse::from(reply))).into_response())
}

async fn openai_embed(State(engine): State<AppState>, Body(request): Body<OpenAiRequest>) -> Result<Response, Failure> {
    let (request, format) = request.into_request();
    let reply = engine.service.embed(OPENAI_EMBED, request).await.map_err(Failure::openai)?;
    Ok((timing_headers(&reply), Json(OpenAiResponse::new(reply, format))).into_response())
}

async fn openai_models(State(engine): State<AppState>) -> Json<OpenAiModels> {
    Json(OpenAiModels::new(engine.service.models(OPENAI_MODELS)))
}

async fn tei_embed(State(engine): State<AppState>, Body(request): Body<TeiEmbedRequest>) -> Result<Response, Failure> {
    let reply = engine.service.embed(TEI_EMBED, request.into()).await.map_err(Failure::tei)?;
    Ok((timing_headers(&reply), Json(reply.vectors)).into_response())
}

async fn tei_rerank(
    State(engine): State<AppState>,
    Body(request): Body<TeiRerankRequest>,
) -> Result<Response, Failure> {
    let (request, texts) = request.into_request();
    let reply = engine.service.rerank(TEI_RERANK, request).await.map_err(Failure::tei)?;
    let headers = timing(reply.tokens, reply.timing, reply.total);
    Ok((headers, Json(tei_ranks(reply, texts))).into_response())
}

/// Cohere's v1 and v2 rerank (v2 is v1 without `return_documents`), which Jina's also follows.
async fn cohere_rerank(
    State(engine): State<AppState>,
    path: MatchedPath,
    headers: axum::http::HeaderMap,
    Body(request): Body<CohereRerankRequest>,
) -> Result<Response, Failure> {
    let (request, documents) = request.into_request();
    let reply = engine.service.rerank(path.as_str(), request).await.map_err(Failure::openai)?;
    let id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let timing = timing(reply.tokens, reply.timing, reply.total);
    Ok((timing, Json(CohereRerankResponse::new(id, reply, documents))).into_response())
}

async fn tei_tokenize(
    State(engine): State<AppState>,
    Body(request): Body<TeiTokenizeRequest>,
) -> Result<Json<Vec<Vec<TeiToken>>>, Failure> {
    let tokens = engine.service.tokenize(TEI_TOKENIZE, request.into()).await.map_err(Failure::tei)?;
    Ok(Json(tokens.into_iter().map(|text| text.into_iter().map(TeiToken::from).collect()).collect()))
}

async fn info(State(engine): State<AppState>) -> Result<Json<InfoResponse>, Failure> {
    Ok(Json(engine.service.info(INFO).await.map_err(Failure::native)?.into()))
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn ready(State(engine): State<AppState>) -> Response {
    if engine.is_ready() {
        Json(json!({"status": "ready"})).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unavailable"}))).into_response()
    }
}

async fn metrics(State(engine): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], engine.render_metrics()).into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], crate::openapi::DOCUMENT).into_response()
}
