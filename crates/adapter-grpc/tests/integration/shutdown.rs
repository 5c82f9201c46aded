//! The real `aki-grpc` binary at SIGTERM: health turns NOT_SERVING at once, calls are still
//! served for `shutdown_delay_secs`, then the process exits 0; and its `--help`.

use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use aki_grpc::pb;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::support::{config, health_client};

/// Starts the real binary on a free port with extra environment and waits until its health
/// check says SERVING: the process, its address and a health client.
pub(crate) async fn spawn_serving(env: &[(&str, &str)]) -> (Child, SocketAddr, HealthClient<Channel>) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_aki-grpc"))
        .args(["--port", &port.to_string(), "--metrics-port", "0", "--device", "cpu", "--model", &config().model])
        .env("RUST_LOG", "warn")
        // Only what the test sets: none of the OpenTelemetry variables of the shell it runs in.
        .envs(crate::trace_tree::OTEL_VARIABLES.map(|name| (name, "")))
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aki-grpc");
    let address: SocketAddr = ([127, 0, 0, 1], port).into();
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(server.try_wait().expect("poll").is_none(), "the server exited during start-up");
        if let Ok(mut client) = health_client(address).await
            && status(&mut client).await.is_ok_and(|s| s == 1)
        {
            return (server, address, client);
        }
        assert!(Instant::now() < until, "never SERVING");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The Embedder's health status.
async fn status(health: &mut HealthClient<Channel>) -> Result<i32, tonic::Status> {
    let ask = HealthCheckRequest { service: "aki.embed.v1.Embedder".into() };
    health.check(ask).await.map(|r| r.into_inner().status)
}

/// Sends SIGTERM and waits (30 s at most) for the exit.
pub(crate) async fn terminate_and_wait(server: &mut Child) -> ExitStatus {
    let killed = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().expect("kill");
    assert!(killed.success());
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(exit) = server.try_wait().expect("poll") {
            return exit;
        }
        assert!(Instant::now() < until, "did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_sigterm_health_is_not_serving_at_once_while_calls_are_served_for_the_delay() {
    let (mut server, address, mut health) = spawn_serving(&[("AKI_LIMITS__SHUTDOWN_DELAY_SECS", "2")]).await;
    let exit = tokio::spawn(async move { terminate_and_wait(&mut server).await });
    let signalled = Instant::now();
    while status(&mut health).await.expect("still answering") != 2 {
        assert!(signalled.elapsed() < Duration::from_secs(1), "still SERVING after SIGTERM");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut client = pb::embedder_client::EmbedderClient::connect(format!("http://{address}")).await.expect("connect");
    let request = pb::EmbedRequest { texts: vec!["still served while draining".into()], ..Default::default() };
    client.embed(request).await.expect("served during the delay");
    assert!(signalled.elapsed() < Duration::from_secs(2), "the checks ran inside the delay");
    let exit = exit.await.expect("waited");
    assert!(exit.success(), "exit status {exit}");
    assert!(signalled.elapsed() >= Duration::from_secs(2), "served for the whole delay");
}

#[test]
fn help_opens_with_what_the_binary_is() {
    let output = Command::new(env!("CARGO_BIN_EXE_aki-grpc")).arg("--help").output().expect("run aki-grpc --help");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.starts_with(env!("CARGO_PKG_DESCRIPTION")), "{help}");
    assert!(help.starts_with("aki-embed's gRPC server"), "{help}");
}
