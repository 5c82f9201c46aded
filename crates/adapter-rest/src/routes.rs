//! The routes: `app(state)` builds the router; each handler checks the key, parses its body,
//! validates limits, then calls the `EmbeddingProvider` port.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aki_core::{
    EmbedError, EmbedOptions, Embeddings, EncodeOptions, Encoding, LoadedModel, TruncationDirection, vector,
};
use aki_wiring::Engine;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use crate::dto::*;
use crate::error::{Failure, Problem, Shape};

/// Shared state of the handlers.
pub type AppState = Arc<Engine>;

/// The router with every route, limit and layer.
pub fn app(engine: AppState) -> Router {
    let limits = &engine.config.limits;
    let mut router = Router::new()
        .route("/api/v1/embed", post(native_embed))
        .route("/v1/embeddings", post(openai_embed))
        .route("/v1/models", get(openai_models))
        .route("/embed", post(tei_embed))
        .route("/tokenize", post(tei_tokenize))
        .route("/info", get(info))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .layer(DefaultBodyLimit::max(limits.body_limit_bytes))
        .layer(middleware::from_fn_with_state(Arc::clone(&engine), record_metrics));
    let request_id = HeaderName::from_static("x-request-id");
    router = router
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

async fn record_metrics(State(engine): State<AppState>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    engine.metrics.request(&route, response.status().as_u16(), started.elapsed());
    response
}

/// Checks `Authorization: Bearer <key>` when a key is configured.
fn authorize(engine: &Engine, headers: &HeaderMap, shape: Shape) -> Result<(), Failure> {
    let Some(key) = &engine.config.api_key else { return Ok(()) };
    if key.matches_bearer(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())) {
        Ok(())
    } else {
        Err(Failure::new(shape, Problem::Unauthorized, "missing or invalid API key (Authorization: Bearer <key>)"))
    }
}

/// Checks the number and size of inputs against the limits.
fn check_inputs(engine: &Engine, count: usize, longest_chars: usize, shape: Shape) -> Result<(), Failure> {
    if count == 0 {
        return Err(Failure::new(shape, Problem::Empty, "the request holds no input"));
    }
    engine.config.limits.check(count, longest_chars).map_err(|e| Failure::from_core(shape, &e))
}

fn longest_chars(texts: &[String]) -> usize {
    texts.iter().map(|t| t.chars().count()).max().unwrap_or(0)
}

fn timeout(engine: &Engine) -> Duration {
    Duration::from_millis(engine.config.limits.request_timeout_ms)
}

/// Runs `work` within the request timeout.
async fn within_timeout<T>(
    engine: &Engine,
    work: impl Future<Output = Result<T, EmbedError>>,
) -> Result<T, EmbedError> {
    tokio::time::timeout(timeout(engine), work).await.unwrap_or(Err(EmbedError::Timeout))
}

/// Embeds texts with the model `model` and the options, within the request timeout.
async fn embed_texts(
    engine: &Engine,
    model: Option<&str>,
    texts: Vec<String>,
    mut options: EmbedOptions,
) -> Result<(LoadedModel, Embeddings), EmbedError> {
    options.deadline = Some(Instant::now() + timeout(engine));
    within_timeout(engine, async {
        let provider = engine.model(model).await?;
        let out = provider.embed(texts, options).await?;
        Ok((provider, out))
    })
    .await
}

/// TEI's timing headers, in milliseconds.
fn timing_headers(out: &Embeddings, started: Instant) -> [(HeaderName, String); 5] {
    let ms = |d: Duration| format!("{}", d.as_millis());
    [
        (HeaderName::from_static("x-compute-tokens"), out.tokens().to_string()),
        (HeaderName::from_static("x-tokenization-time"), ms(out.timing.tokenize)),
        (HeaderName::from_static("x-queue-time"), ms(out.timing.queue)),
        (HeaderName::from_static("x-inference-time"), ms(out.timing.inference)),
        (HeaderName::from_static("x-total-time"), ms(started.elapsed())),
    ]
}

async fn native_embed(
    State(engine): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<NativeRequest>, JsonRejection>,
) -> Result<Response, Failure> {
    let shape = Shape::Native;
    let started = Instant::now();
    authorize(&engine, &headers, shape)?;
    let Json(request) = body.map_err(|r| Failure::from_rejection(shape, &r))?;
    check_inputs(&engine, request.texts.len(), longest_chars(&request.texts), shape)?;
    let options = EmbedOptions {
        normalize: request.normalize,
        encode: EncodeOptions { truncate: request.truncate.unwrap_or(true), direction: TruncationDirection::Right },
        dimensions: request.dimensions,
        deadline: None,
    };
    let (provider, out) = embed_texts(&engine, request.model.as_deref(), request.texts, options)
        .await
        .map_err(|e| Failure::from_core(shape, &e))?;
    engine.metrics.tokens(out.tokens());
    let headers = timing_headers(&out, started);
    let info = provider.info();
    let body = NativeResponse {
        model: info.model_id.clone(),
        dimension: out.vectors.first().map_or(info.dimension, Vec::len),
        usage: NativeUsage { tokens: out.tokens() },
        embeddings: out.vectors,
    };
    Ok((headers, Json(body)).into_response())
}

async fn openai_embed(
    State(engine): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<OpenAiRequest>, JsonRejection>,
) -> Result<Response, Failure> {
    let shape = Shape::OpenAi;
    let started = Instant::now();
    authorize(&engine, &headers, shape)?;
    let Json(request) = body.map_err(|r| Failure::from_rejection(shape, &r))?;
    let fail = |e: EmbedError| Failure::from_core(shape, &e);
    let options = EmbedOptions { dimensions: request.dimensions, ..EmbedOptions::default() };
    let model = request.model.as_deref();
    let (provider, out) = match request.input {
        OpenAiInput::Text(text) => {
            check_inputs(&engine, 1, text.chars().count(), shape)?;
            embed_texts(&engine, model, vec![text], options).await.map_err(fail)?
        }
        OpenAiInput::Texts(texts) => {
            check_inputs(&engine, texts.len(), longest_chars(&texts), shape)?;
            embed_texts(&engine, model, texts, options).await.map_err(fail)?
        }
        OpenAiInput::Tokens(ids) => {
            check_inputs(&engine, 1, 0, shape)?;
            embed_tokens(&engine, model, vec![ids], options).await.map_err(fail)?
        }
        OpenAiInput::TokenLists(lists) => {
            check_inputs(&engine, lists.len(), 0, shape)?;
            embed_tokens(&engine, model, lists, options).await.map_err(fail)?
        }
    };
    engine.metrics.tokens(out.tokens());
    let headers = timing_headers(&out, started);
    let tokens = out.tokens();
    let data = out
        .vectors
        .into_iter()
        .enumerate()
        .map(|(index, v)| OpenAiEmbedding {
            object: "embedding",
            index,
            embedding: match request.encoding_format {
                EncodingFormat::Float => OpenAiVector::Float(v),
                EncodingFormat::Base64 => OpenAiVector::Base64(base64_f32(&v)),
            },
        })
        .collect();
    let body = OpenAiResponse {
        object: "list",
        data,
        model: provider.info().model_id.clone(),
        usage: OpenAiUsage { prompt_tokens: tokens, total_tokens: tokens },
    };
    Ok((headers, Json(body)).into_response())
}

/// Embeds inputs given as token ids (taken as complete model inputs).
async fn embed_tokens(
    engine: &Engine,
    model: Option<&str>,
    lists: Vec<Vec<u32>>,
    options: EmbedOptions,
) -> Result<(LoadedModel, Embeddings), EmbedError> {
    within_timeout(engine, async {
        let provider = engine.model(model).await?;
        vector::check_dimensions(&options, provider.info())?;
        let token_counts: Vec<usize> = lists.iter().map(Vec::len).collect();
        let encodings = lists.into_iter().map(|ids| Encoding { type_ids: vec![0; ids.len()], ids }).collect();
        let pooled = provider.embed_encoded(encodings).await?;
        let info = provider.info();
        let vectors = pooled.into_iter().map(|v| vector::finish(v, &options, info)).collect();
        Ok((Arc::clone(&provider), Embeddings { vectors, token_counts, timing: Default::default() }))
    })
    .await
}

fn base64_f32(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn openai_models(State(engine): State<AppState>, headers: HeaderMap) -> Result<Response, Failure> {
    authorize(&engine, &headers, Shape::OpenAi)?;
    let data: Vec<_> = engine
        .allowed_models()
        .into_iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "aki-embed"}))
        .collect();
    Ok(Json(json!({"object": "list", "data": data})).into_response())
}

async fn tei_embed(
    State(engine): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<TeiEmbedRequest>, JsonRejection>,
) -> Result<Response, Failure> {
    let shape = Shape::Tei;
    let started = Instant::now();
    authorize(&engine, &headers, shape)?;
    let Json(request) = body.map_err(|r| Failure::from_rejection(shape, &r))?;
    let texts = request.inputs.into_vec();
    check_inputs(&engine, texts.len(), longest_chars(&texts), shape)?;
    let direction = match request.truncation_direction {
        TeiDirection::Right => TruncationDirection::Right,
        TeiDirection::Left => TruncationDirection::Left,
    };
    let options = EmbedOptions {
        normalize: Some(request.normalize.unwrap_or(true)),
        encode: EncodeOptions { truncate: request.truncate.unwrap_or(false), direction },
        dimensions: request.dimensions,
        deadline: None,
    };
    let (_, out) = embed_texts(&engine, None, texts, options).await.map_err(|e| Failure::from_core(shape, &e))?;
    engine.metrics.tokens(out.tokens());
    let headers = timing_headers(&out, started);
    Ok((headers, Json(out.vectors)).into_response())
}

async fn tei_tokenize(
    State(engine): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<TeiTokenizeRequest>, JsonRejection>,
) -> Result<Response, Failure> {
    let shape = Shape::Tei;
    authorize(&engine, &headers, shape)?;
    let Json(request) = body.map_err(|r| Failure::from_rejection(shape, &r))?;
    let texts = request.inputs.into_vec();
    check_inputs(&engine, texts.len(), longest_chars(&texts), shape)?;
    let add_special = request.add_special_tokens.unwrap_or(true);
    let tokens = within_timeout(&engine, async { engine.model(None).await?.tokenize(texts, add_special).await })
        .await
        .map_err(|e| Failure::from_core(shape, &e))?;
    let body: Vec<Vec<TeiToken>> = tokens
        .into_iter()
        .map(|tokens| {
            tokens
                .into_iter()
                .map(|t| TeiToken {
                    id: t.id,
                    special: t.special,
                    start: (!t.special).then_some(t.start),
                    stop: (!t.special).then_some(t.stop),
                    text: t.text,
                })
                .collect()
        })
        .collect();
    Ok(Json(body).into_response())
}

async fn info(State(engine): State<AppState>) -> Result<Response, Failure> {
    let model = engine.model(None).await.map_err(|e| Failure::from_core(Shape::Native, &e))?;
    let info = model.info();
    let batching = &engine.config.batching;
    Ok(Json(json!({
        "model_id": info.model_id,
        "dimension": info.dimension,
        "max_input_tokens": info.max_input_tokens,
        "pooling": format!("{:?}", info.pooling).to_lowercase(),
        "normalize": info.normalize_default,
        "dtype": info.dtype,
        "device": info.device,
        "max_batch_size": batching.max_batch_size,
        "max_batch_tokens": batching.max_batch_tokens,
        "max_client_batch_size": engine.config.limits.max_inputs,
        "models": engine.allowed_models(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response())
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn ready(State(engine): State<AppState>) -> Response {
    if engine.is_ready() {
        Json(json!({"status": "ready"})).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "loading"}))).into_response()
    }
}

async fn metrics(State(engine): State<AppState>) -> Response {
    let text = engine.render_metrics().await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], crate::openapi::DOCUMENT).into_response()
}
