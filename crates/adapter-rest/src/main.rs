//! Entry point of `aki-rest`: reads the layered configuration and serves.

use aki_wiring::{AppConfig, server_main};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    server_main("aki-rest", env!("CARGO_PKG_DESCRIPTION"), AppConfig::default(), aki_rest::run).await
}
