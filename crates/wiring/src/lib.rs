//! The composition root shared by aki-embed's servers: configuration, wiring of the model
//! store (Candle backend, batching, result cache), Prometheus metrics, and logging.

mod compose;
mod config;
mod lifecycle;
mod metrics;
mod telemetry;

pub use compose::Engine;
pub use config::{AppConfig, CliArgs, Limits, LogFormat, Secret};
pub use lifecycle::{Lifecycle, bind, server_main};
pub use metrics::Metrics;
pub use telemetry::{init_logging, shutdown_signal};
