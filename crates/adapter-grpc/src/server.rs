//! Running the gRPC server: health (NOT_SERVING until the model is warm), reflection (v1 and
//! v1alpha), the Embedder service and TEI's `tei.v1` services behind the API-key layer, metrics on their own HTTP port, and
//! a graceful shutdown on SIGINT/SIGTERM.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use aki_core::{EmbedError, ModelInfo, ModelTask, Priority};
use aki_service::Caller;
use aki_wiring::{
    AppConfig, ConnectionObserver, Connections, Engine, Lifecycle, connection_limit, raise_open_file_limit,
    shutdown_signal,
};
use anyhow::{Context as _, Result};
use axum::routing::get;
use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::server::NamedService;
use tonic_health::ServingStatus;

use crate::connection::incoming;
use crate::failure::fail;
use crate::pb;
use crate::pb::embedder_server::EmbedderServer;
use crate::service::EmbedderService;
use crate::tei::TeiService;
use crate::tei_pb;

/// `aki-grpc`'s compiled defaults: port 50051, metrics on 9464.
pub fn default_config() -> AppConfig {
    AppConfig { port: 50051, metrics_port: 9464, ..AppConfig::default() }
}

/// Binds `config.host:config.port` and serves until SIGINT or SIGTERM.
///
/// # Errors
/// When an address cannot be bound, or the default model cannot be loaded.
pub async fn run(config: AppConfig) -> Result<()> {
    let listener = aki_wiring::bind(&config.host, config.port).await?;
    serve(listener, Engine::new(config)?, shutdown_signal()).await
}

/// The API-key layer of a service: `authorization: Bearer <key>` metadata, checked by the
/// application service (which counts refusals under the method's path) before the call runs.
#[derive(Clone)]
pub struct KeyChecked<S> {
    inner: S,
    engine: Arc<Engine>,
}

impl<S: NamedService> NamedService for KeyChecked<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tower::Service<http::Request<B>> for KeyChecked<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let token = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let route = request.uri().path().to_string();
        let priority = request.headers().get(PRIORITY).map(|v| v.to_str().unwrap_or_default().parse::<Priority>());
        let caller = self.engine.service.authorize(&route, token).and_then(|tenant| match priority {
            None => Ok(Caller { tenant, ..Caller::default() }),
            Some(Ok(priority)) => Ok(Caller { tenant, priority, requester: None }),
            Some(Err(message)) => {
                let error = EmbedError::Validation(format!("metadata `{PRIORITY}`: {message}"));
                self.engine.service.reject(&route, &error);
                Err(error)
            }
        });
        match caller {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                Box::pin(self.inner.call(request))
            }
            Err(error) => {
                let refused = fail(&route, &error).into_http();
                Box::pin(async move { Ok(refused) })
            }
        }
    }
}

/// The metadata that asks for a lane: `interactive`, `bulk` or `auto`.
const PRIORITY: &str = "x-priority";

type Embedder = KeyChecked<EmbedderServer<EmbedderService>>;

fn embedder(engine: &Arc<Engine>) -> Embedder {
    let server = EmbedderServer::new(EmbedderService::new(Arc::clone(engine)))
        .max_decoding_message_size(engine.config.limits.body_limit_bytes);
    KeyChecked { inner: server, engine: Arc::clone(engine) }
}

/// A `tei.v1` service behind the API-key layer, with the same message size limit.
macro_rules! tei_service {
    ($engine:expr, $($server:ident)::+) => {
        KeyChecked {
            inner: tei_pb::$($server)::+::new(TeiService::new(Arc::clone($engine)))
                .max_decoding_message_size($engine.config.limits.body_limit_bytes),
            engine: Arc::clone($engine),
        }
    };
}

/// The served services, each with whether it serves `model` (as TEI's health says: `Embed`
/// for embedders, `Predict` for classifiers and rerankers, `Rerank` for rerankers).
fn served(model: &ModelInfo) -> [(&'static str, bool); 6] {
    let (embeds, reranks) = (model.task == ModelTask::Embed, model.task == ModelTask::Rerank);
    [
        (<Embedder as NamedService>::NAME, true),
        (<tei_pb::info_server::InfoServer<TeiService> as NamedService>::NAME, true),
        (<tei_pb::tokenize_server::TokenizeServer<TeiService> as NamedService>::NAME, true),
        (<tei_pb::embed_server::EmbedServer<TeiService> as NamedService>::NAME, embeds),
        (<tei_pb::predict_server::PredictServer<TeiService> as NamedService>::NAME, reranks),
        (<tei_pb::rerank_server::RerankServer<TeiService> as NamedService>::NAME, model.is_reranker()),
    ]
}

/// Serves `engine` on `listener` until `shutdown` completes (tests pass their own signal).
///
/// # Errors
/// When the default model cannot be loaded, or the server fails.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let local = listener.local_addr()?;
    let (reporter, health) = tonic_health::server::health_reporter();
    for (name, _) in served(&ModelInfo::default()) {
        reporter.set_service_status(name, ServingStatus::NotServing).await;
    }
    reporter.set_service_status("", ServingStatus::NotServing).await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1().context("building the reflection service")?;
    let reflection_v1alpha = reflection().build_v1alpha().context("building the reflection service")?;
    let serving = |status: ServingStatus| {
        let (reporter, engine) = (reporter.clone(), Arc::clone(&engine));
        move || async move {
            let model = engine.service.served().await.unwrap_or_default();
            for (name, serves) in served(&model) {
                let status = if serves { status } else { ServingStatus::NotServing };
                reporter.set_service_status(name, status).await;
            }
            reporter.set_service_status("", status).await;
        }
    };
    let lifecycle =
        Lifecycle::start(&engine, shutdown, serving(ServingStatus::Serving), serving(ServingStatus::NotServing));
    if engine.config.metrics_port != 0 {
        let metrics =
            aki_wiring::bind(&engine.config.metrics_host, engine.config.metrics_port).await.context("metrics port")?;
        let app = axum::Router::new().route("/metrics", get(render_metrics)).with_state(Arc::clone(&engine));
        let stopping = lifecycle.stopping();
        tokio::spawn(async move {
            let _ = axum::serve(metrics, app).with_graceful_shutdown(stopping).await;
        });
    }
    tracing::info!(address = %local, model = %engine.config.model, "gRPC listening; loading the model");
    let limits = &engine.config.limits;
    let per_connection = limits.max_streams_per_connection;
    let held = connection_limit(limits.max_connections, raise_open_file_limit());
    let connections = Connections::new(held, Arc::clone(&engine.metrics) as Arc<dyn ConnectionObserver>);
    let keepalive = Duration::from_secs(limits.keepalive_secs);
    let first_bytes = Duration::from_secs(limits.header_timeout_secs);
    let server = tonic::transport::Server::builder()
        .max_concurrent_streams(Some(per_connection))
        .concurrency_limit_per_connection(per_connection as usize)
        .http2_keepalive_interval(Some(keepalive))
        .http2_keepalive_timeout(Some(keepalive))
        .trace_fn(call_span)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(embedder(&engine))
        .add_service(tei_service!(&engine, info_server::InfoServer))
        .add_service(tei_service!(&engine, embed_server::EmbedServer))
        .add_service(tei_service!(&engine, predict_server::PredictServer))
        .add_service(tei_service!(&engine, rerank_server::RerankServer))
        .add_service(tei_service!(&engine, tokenize_server::TokenizeServer))
        .serve_with_incoming_shutdown(incoming(listener, connections, first_bytes), lifecycle.stopping());
    let result = lifecycle.run(server).await;
    reporter.set_service_status("", ServingStatus::NotServing).await;
    result
}

/// The span of one call, named by its method and continuing the caller's trace
/// (`traceparent` metadata).
fn call_span(request: &http::Request<()>) -> tracing::Span {
    let method = request.uri().path();
    let span = tracing::info_span!("request", otel.name = %method.trim_start_matches('/'), otel.kind = "server", method = %method);
    aki_wiring::continue_caller_trace(&span, request.headers());
    span
}

async fn render_metrics(axum::extract::State(engine): axum::extract::State<Arc<Engine>>) -> String {
    engine.render_metrics()
}
