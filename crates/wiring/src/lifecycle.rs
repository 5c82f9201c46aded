//! The life of a server process, shared by the adapters: load and warm the default model in
//! the background, stop on a signal or a failed start-up, give in-flight work a bounded grace
//! period, drain the batchers; and the `main` of a server binary.

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::compose::Engine;
use crate::config::{AppConfig, CliArgs};
use crate::telemetry::init_logging;

/// Binds a TCP listener on `host:port`, naming the address in the error.
///
/// # Errors
/// When the address cannot be bound (in use, not local, no permission).
pub async fn bind(host: &str, port: u16) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind((host, port)).await.with_context(|| format!("binding {host}:{port}"))
}

/// A started server's stop switch and start-up task.
pub struct Lifecycle {
    stop: watch::Receiver<bool>,
    starting: JoinHandle<aki_core::Result<()>>,
    engine: Arc<Engine>,
}

impl Lifecycle {
    /// Starts loading the default model (then runs `on_ready`) and listens for `shutdown`;
    /// a failed load also stops the server.
    pub fn start<R>(
        engine: &Arc<Engine>,
        shutdown: impl Future<Output = ()> + Send + 'static,
        on_ready: impl FnOnce() -> R + Send + 'static,
    ) -> Self
    where
        R: Future<Output = ()> + Send,
    {
        let (stop_tx, stop) = watch::channel(false);
        let starting = tokio::spawn({
            let (engine, stop_tx) = (Arc::clone(engine), stop_tx.clone());
            async move {
                let result = engine.start().await;
                match result {
                    Ok(()) => on_ready().await,
                    Err(_) => {
                        let _ = stop_tx.send(true);
                    }
                }
                result
            }
        });
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutdown requested: no new work; finishing what is in flight");
            let _ = stop_tx.send(true);
        });
        Self { stop, starting, engine: Arc::clone(engine) }
    }

    /// Completes when the server must stop accepting work.
    pub fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stop = self.stop.clone();
        async move {
            let _ = stop.wait_for(|s| *s).await;
        }
    }

    /// Runs `server` (which stops accepting on [`stopping`](Self::stopping) and returns when its
    /// in-flight work is done), cutting it off `limits.shutdown_timeout_secs` after the stop;
    /// then drains the batchers.
    ///
    /// # Errors
    /// The server's error, or the default model's load error.
    pub async fn run<E>(self, server: impl Future<Output = Result<(), E>>) -> Result<()>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let grace = Duration::from_secs(self.engine.config.limits.shutdown_timeout_secs);
        let stopping = self.stopping();
        let deadline = async move {
            stopping.await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            served = server => served.context("serving")?,
            () = deadline => tracing::warn!(grace_secs = grace.as_secs(), "in-flight work did not finish in time"),
        }
        self.engine.shutdown().await;
        if self.starting.is_finished() {
            self.starting.await.context("start-up task")?.context("loading the default model")?;
        } else {
            self.starting.abort();
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// The `main` of a server binary `name`: parse flags, load the configuration over `defaults`,
/// set up logging, run `serve`; exit 2 on a configuration error, 1 on a failure.
pub async fn server_main<F, Fut>(name: &str, defaults: AppConfig, serve: F) -> ExitCode
where
    F: FnOnce(AppConfig) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let cli = <CliArgs as clap::Parser>::parse();
    let config = match AppConfig::load(defaults, &cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    tracing::debug!(?config, "configuration");
    match serve(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("{name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}
