//! Running the gRPC server: health (NOT_SERVING until the model is warm), reflection, the
//! Embedder service behind the optional bearer-key check, metrics on their own HTTP port, and
//! a graceful shutdown on SIGINT/SIGTERM.

use std::future::Future;
use std::sync::Arc;

use aki_wiring::{AppConfig, Engine, Lifecycle, Secret, shutdown_signal};
use anyhow::{Context, Result};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Status};
use tonic_health::ServingStatus;

use crate::pb;
use crate::pb::embedder_server::EmbedderServer;
use crate::service::EmbedderService;

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
    serve(listener, Engine::new(config), shutdown_signal()).await
}

/// Checks `authorization: Bearer <key>` when an API key is configured.
#[derive(Clone)]
pub struct BearerKey(Option<Secret>);

impl Interceptor for BearerKey {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(key) = &self.0 else { return Ok(request) };
        if key.matches_bearer(request.metadata().get("authorization").and_then(|v| v.to_str().ok())) {
            Ok(request)
        } else {
            Err(Status::unauthenticated("missing or invalid API key (authorization: Bearer <key>)"))
        }
    }
}

type Checked = InterceptedService<EmbedderServer<EmbedderService>, BearerKey>;

fn embedder(engine: &Arc<Engine>) -> Checked {
    let key = BearerKey(engine.config.api_key.clone());
    let server = EmbedderServer::new(EmbedderService::new(Arc::clone(engine)))
        .max_decoding_message_size(engine.config.limits.body_limit_bytes);
    InterceptedService::new(server, key)
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
    reporter.set_not_serving::<Checked>().await;
    reporter.set_service_status("", ServingStatus::NotServing).await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building the reflection service")?;
    let lifecycle = Lifecycle::start(&engine, shutdown, {
        let reporter = reporter.clone();
        move || async move {
            reporter.set_serving::<Checked>().await;
            reporter.set_service_status("", ServingStatus::Serving).await;
        }
    });
    if engine.config.metrics_port != 0 {
        let metrics =
            aki_wiring::bind(&engine.config.host, engine.config.metrics_port).await.context("metrics port")?;
        let app = axum::Router::new().route("/metrics", get(render_metrics)).with_state(Arc::clone(&engine));
        let stopping = lifecycle.stopping();
        tokio::spawn(async move {
            let _ = axum::serve(metrics, app).with_graceful_shutdown(stopping).await;
        });
    }
    tracing::info!(address = %local, model = %engine.config.model, "gRPC listening; loading the model");
    let server = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(reflection)
        .add_service(embedder(&engine))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), lifecycle.stopping());
    let result = lifecycle.run(server).await;
    reporter.set_service_status("", ServingStatus::NotServing).await;
    result
}

async fn render_metrics(axum::extract::State(engine): axum::extract::State<Arc<Engine>>) -> String {
    engine.render_metrics().await
}
