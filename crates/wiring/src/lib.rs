//! The composition root shared by aki-embed's servers: configuration, wiring of the model
//! store (Candle backend, batching, result cache) under the application service, Prometheus
//! metrics, logging and trace export, and the server process lifecycle.

mod cli;
mod compose;
mod config;
mod connections;
mod gpu;
mod input_types;
mod lifecycle;
mod memory;
mod metrics;
mod otel;
mod telemetry;

pub use cli::CliArgs;
pub use compose::Engine;
pub use config::{AppConfig, LogFormat};
pub use connections::{
    Busy, Closed, Connection, ConnectionObserver, Connections, connection_limit, raise_open_file_limit,
};
pub use input_types::{INPUT_TYPES, InputTypePrompts, MappedPrompt};
pub use lifecycle::{Lifecycle, bind, server_main};
pub use metrics::{Metrics, ModelMetrics};
pub use otel::{TraceExport, continue_caller_trace};
pub use telemetry::{init_telemetry, shutdown_signal};
