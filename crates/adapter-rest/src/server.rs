//! Running the server: bind, load the default model in the background (`/ready` says 503
//! until it is warm), serve connections within their bounds (`connection.rs`), and on
//! SIGINT/SIGTERM stop accepting, finish in-flight requests within the shutdown timeout, drain
//! the batchers, and return.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aki_wiring::{
    AppConfig, ConnectionObserver, Connections, Engine, Lifecycle, connection_limit, raise_open_file_limit,
    shutdown_signal,
};
use anyhow::Result;
use tokio::net::TcpListener;

use crate::app::app;
use crate::connection::{Bounds, serve_connections};

/// Binds `config.host:config.port` and serves until SIGINT or SIGTERM.
///
/// # Errors
/// When the address cannot be bound, or the default model cannot be loaded.
pub async fn run(config: AppConfig) -> Result<()> {
    let listener = aki_wiring::bind(&config.host, config.port).await?;
    serve(listener, Engine::new(config)?, shutdown_signal()).await
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
    tracing::info!(address = %local, model = %engine.config.model, "listening; loading the model");
    let lifecycle = Lifecycle::start(&engine, shutdown, || async {}, || async {});
    let limits = &engine.config.limits;
    let held = connection_limit(limits.max_connections, raise_open_file_limit());
    let connections = Connections::new(held, Arc::clone(&engine.metrics) as Arc<dyn ConnectionObserver>);
    let bounds = Bounds {
        header: Duration::from_secs(limits.header_timeout_secs),
        body: Duration::from_secs(limits.body_timeout_secs),
    };
    let server = serve_connections(listener, app(Arc::clone(&engine)), connections, bounds, lifecycle.stopping());
    lifecycle.run(server).await
}
