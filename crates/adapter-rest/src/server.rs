//! Running the server: bind, load the default model in the background (`/ready` says 503
//! until it is warm), serve, and on SIGINT/SIGTERM stop accepting, finish in-flight requests
//! within the shutdown timeout, drain the batchers, and return.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aki_wiring::{AppConfig, Engine, shutdown_signal};
use anyhow::{Context, Result};
use tokio::net::TcpListener;

use crate::routes::app;

/// Binds `config.host:config.port` and serves until SIGINT or SIGTERM.
///
/// # Errors
/// When the address cannot be bound, or the default model cannot be loaded.
pub async fn run(config: AppConfig) -> Result<()> {
    let address = (config.host.clone(), config.port);
    let listener = TcpListener::bind(&address).await.with_context(|| format!("binding {}:{}", address.0, address.1))?;
    serve(listener, Engine::new(config), shutdown_signal()).await
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
    let grace = Duration::from_secs(engine.config.limits.shutdown_timeout_secs);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // A failed start-up stops the server with the error.
    let starting = tokio::spawn({
        let engine = Arc::clone(&engine);
        let stop_tx = stop_tx.clone();
        async move {
            let result = engine.start().await;
            if result.is_err() {
                let _ = stop_tx.send(true);
            }
            result
        }
    });
    let signalled = {
        let stop_tx = stop_tx.clone();
        async move {
            shutdown.await;
            tracing::info!("shutdown requested: no new connections; finishing in-flight requests");
            let _ = stop_tx.send(true);
        }
    };
    tokio::spawn(signalled);
    let mut stop = stop_rx.clone();
    let server = axum::serve(listener, app(Arc::clone(&engine))).with_graceful_shutdown(async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    let mut stop = stop_rx;
    let deadline = async move {
        let _ = stop.wait_for(|s| *s).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        served = server => served.context("serving")?,
        () = deadline => tracing::warn!(grace_secs = grace.as_secs(), "in-flight requests did not finish in time"),
    }
    engine.shutdown().await;
    if starting.is_finished() {
        starting.await.context("start-up task")?.context("loading the default model")?;
    } else {
        starting.abort();
    }
    tracing::info!("stopped");
    Ok(())
}
