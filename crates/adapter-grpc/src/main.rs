//! Entry point of `aki-grpc`: reads the layered configuration and serves.

use aki_wiring::server_main;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    server_main("aki-grpc", env!("CARGO_PKG_DESCRIPTION"), aki_grpc::default_config(), aki_grpc::run).await
}
