//! Process plumbing shared by the servers: logging set-up (`tracing` to stderr, human-readable
//! or JSON, filtered by `RUST_LOG`), with OpenTelemetry trace export beside it when the
//! environment asks (`otel.rs`), and the shutdown signal.

use anyhow::Result;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::LogFormat;
use crate::otel::{self, TraceExport};

/// Installs the global subscriber: logs (`RUST_LOG` filters; default `info`), and trace
/// export as `service_name` when OpenTelemetry's variables name an endpoint (the exporter is
/// returned, to be shut down at exit), its failures (an unreachable collector, dropped spans)
/// logged as warnings. Must be called inside the Tokio runtime, once per process.
///
/// # Errors
/// When the trace exporter cannot be built from the variables.
pub fn init_telemetry(format: LogFormat, service_name: &str) -> Result<Option<TraceExport>> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Human => logs.with_filter(filter).boxed(),
        LogFormat::Json => logs.json().with_filter(filter).boxed(),
    };
    let mut layers = vec![logs];
    let export = match otel::layer::<Registry>(service_name)? {
        Some((layer, export)) => {
            layers.push(layer.boxed());
            Some(export)
        }
        None => None,
    };
    let _ = tracing_subscriber::registry().with(layers).try_init();
    Ok(export)
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
