//! `CliArgs`: the servers' command-line flags, each overriding the configuration key of the same
//! name.

use std::path::PathBuf;

use serde::Serialize;

use crate::config::LogFormat;

/// Command-line flags; each overrides the configuration key of the same name.
#[derive(Debug, Clone, Default, clap::Parser, Serialize)]
#[command(version)]
pub struct CliArgs {
    /// Configuration file (TOML); default `aki.toml` when it exists.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on [config: host, env: AKI_HOST].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Port to listen on [config: port, env: AKI_PORT].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Default model: hub id or local directory [config: model, env: AKI_MODEL].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Inference device: auto, cpu, cuda, cuda:N, metal [config: backend.device].
    #[arg(long)]
    #[serde(skip)]
    pub device: Option<String>,
    /// Log format [config: log_format, env: AKI_LOG_FORMAT].
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    /// Port of the metrics endpoint (gRPC server) [config: metrics_port].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_port: Option<u16>,
    /// Print the configuration in force (every key, as TOML, the API key hidden) and exit.
    #[arg(long)]
    #[serde(skip)]
    pub print_config: bool,
}
