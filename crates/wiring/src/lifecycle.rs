//! The life of a server process, shared by the adapters: load and warm the default model in
//! the background; on a signal report not ready at once, keep serving for a delay, then stop
//! accepting; give in-flight work and the batchers' queues one bounded grace period; stop on a
//! failed start-up; and the `main` of a server binary.

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cli::CliArgs;
use crate::compose::Engine;
use crate::config::AppConfig;
use crate::telemetry::init_telemetry;

/// Binds a TCP listener on `host:port`, naming the address in the error.
///
/// # Errors
/// When the address cannot be bound (in use, not local, no permission).
pub async fn bind(host: &str, port: u16) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind((host, port)).await.with_context(|| format!("binding {host}:{port}"))
}

/// A started server's stop switch and start-up task.
pub struct Lifecycle {
    /// When the server stopped accepting work; `None` until then.
    stop: watch::Receiver<Option<Instant>>,
    starting: JoinHandle<aki_core::Result<()>>,
    /// Set by the start-up task just before it stops the server because the model failed to
    /// load: its result must then be awaited, not aborted, however busy the runtime is.
    start_failed: Arc<AtomicBool>,
    engine: Arc<Engine>,
}

impl Lifecycle {
    /// Starts loading the default model (then runs `on_ready`) and listens for `shutdown`; a
    /// failed load also stops the server.
    ///
    /// On `shutdown` the server drains: at once it reports not ready (`/ready` 503, and
    /// `on_draining` for protocols with their own health, gRPC's NOT_SERVING), so load balancers
    /// stop sending work; it keeps serving what still arrives for `limits.shutdown_delay_secs`
    /// (the time they take to notice); then it stops accepting.
    pub fn start<R, D>(
        engine: &Arc<Engine>,
        shutdown: impl Future<Output = ()> + Send + 'static,
        on_ready: impl FnOnce() -> R + Send + 'static,
        on_draining: impl FnOnce() -> D + Send + 'static,
    ) -> Self
    where
        R: Future<Output = ()> + Send,
        D: Future<Output = ()> + Send,
    {
        let (stop_tx, stop) = watch::channel(None);
        let start_failed = Arc::new(AtomicBool::new(false));
        let starting = tokio::spawn({
            let (engine, stop_tx, failed) = (Arc::clone(engine), stop_tx.clone(), Arc::clone(&start_failed));
            async move {
                let result = engine.start().await;
                match result {
                    Ok(()) => on_ready().await,
                    Err(_) => {
                        failed.store(true, Ordering::SeqCst);
                        let _ = stop_tx.send(Some(Instant::now()));
                    }
                }
                result
            }
        });
        tokio::spawn({
            let engine = Arc::clone(engine);
            async move {
                shutdown.await;
                engine.service.mark_draining();
                on_draining().await;
                let delay = Duration::from_secs(engine.config.limits.shutdown_delay_secs);
                tracing::info!(
                    delay_secs = delay.as_secs(),
                    "shutdown requested: not ready; serving what still arrives"
                );
                tokio::time::sleep(delay).await;
                tracing::info!("no new work; finishing what is in flight");
                let _ = stop_tx.send(Some(Instant::now()));
            }
        });
        Self { stop, starting, start_failed, engine: Arc::clone(engine) }
    }

    /// Completes when the server must stop accepting work.
    pub fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stop = self.stop.clone();
        async move {
            let _ = stop.wait_for(Option::is_some).await;
        }
    }

    /// Runs `server` (which stops accepting on [`stopping`](Self::stopping) and returns when its
    /// in-flight work is done), then drains the batchers' queues; both together are cut off
    /// `limits.shutdown_timeout_secs` after the server stopped accepting.
    ///
    /// # Errors
    /// The server's error, or the default model's load error.
    pub async fn run<E>(self, server: impl Future<Output = Result<(), E>>) -> Result<()>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let grace = Duration::from_secs(self.engine.config.limits.shutdown_timeout_secs);
        let mut stop = self.stop.clone();
        let cut_off = async move {
            let stopped = stop.wait_for(Option::is_some).await.ok().and_then(|s| *s).unwrap_or_else(Instant::now);
            tokio::time::sleep_until((stopped + grace).into()).await;
        };
        tokio::pin!(cut_off);
        let cut = tokio::select! {
            served = server => {
                served.context("serving")?;
                false
            }
            () = &mut cut_off => true,
        };
        let cut = cut
            || tokio::select! {
                () = self.engine.shutdown() => false,
                () = &mut cut_off => true,
            };
        if cut {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "in-flight and queued work did not finish in time; stopping anyway"
            );
        }
        if self.starting.is_finished() || self.start_failed.load(Ordering::SeqCst) {
            self.starting.await.context("start-up task")?.context("loading the default model")?;
        } else {
            self.starting.abort();
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// The `main` of a server binary `name`, which `--help` introduces with `about` (what the
/// binary is): parse flags, load the configuration over `defaults` (with `--print-config`,
/// print it and exit), set up logging and trace export, run `serve`, send the last spans; exit 2 on a configuration error, 1 on a
/// failure.
pub async fn server_main<F, Fut>(name: &'static str, about: &'static str, defaults: AppConfig, serve: F) -> ExitCode
where
    F: FnOnce(AppConfig) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    use clap::{CommandFactory, FromArgMatches};
    let command = CliArgs::command().name(name).bin_name(name).about(about).long_about(None::<&str>);
    let matches = command.get_matches();
    let cli = match CliArgs::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let config = match AppConfig::load(defaults, &cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            return ExitCode::from(2);
        }
    };
    if cli.print_config {
        return match config.to_toml() {
            Ok(toml) => {
                print!("{toml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{name}: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let export = match init_telemetry(config.log_format, name) {
        Ok(export) => export,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            return ExitCode::from(2);
        }
    };
    tracing::debug!(?config, "configuration");
    if export.is_some() {
        tracing::info!("exporting traces by OTLP (OTEL_EXPORTER_OTLP_* variables)");
    }
    if !config.gpu_defaults.is_empty() {
        tracing::info!(keys = ?config.gpu_defaults, "GPU device: these keys take their GPU defaults (set them to override)");
    }
    crate::memory::trim_memory_every(std::time::Duration::from_secs(config.memory_trim_secs));
    let code = match serve(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("{name}: {e:#}");
            ExitCode::FAILURE
        }
    };
    if let Some(export) = export {
        // The exporter's last send blocks; the gRPC one needs the runtime's other threads.
        let _ = tokio::task::spawn_blocking(move || export.shutdown()).await;
    }
    code
}
