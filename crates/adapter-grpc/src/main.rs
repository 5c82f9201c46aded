//! Entry point of `aki-grpc`: reads the layered configuration and serves.

use aki_wiring::{AppConfig, CliArgs, init_logging};
use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = CliArgs::parse();
    let config = match AppConfig::load(aki_grpc::default_config(), &cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("aki-grpc: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    tracing::debug!(?config, "configuration");
    match aki_grpc::run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("aki-grpc: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
