//! A server on a free port with the real model, and a connected client.

use std::net::SocketAddr;

use aki_core::paths;
use aki_grpc::pb::embedder_client::EmbedderClient;
use aki_wiring::{AppConfig, Engine};
use serde_json::Value;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

pub fn config() -> AppConfig {
    let dir = paths::installed_model_dir(paths::DEFAULT_MODEL);
    assert!(
        dir.join("model.safetensors").is_file(),
        "model missing in {}: run `cargo xtask fetch-model`",
        dir.display()
    );
    let mut config =
        AppConfig { model: dir.to_string_lossy().into_owned(), metrics_port: 0, ..aki_grpc::default_config() };
    config.backend.device = "cpu".into();
    config
}

/// A `grpc.health.v1` client.
pub async fn health_client(address: SocketAddr) -> Result<HealthClient<Channel>, tonic::transport::Error> {
    Ok(HealthClient::new(Channel::from_shared(format!("http://{address}")).expect("uri").connect().await?))
}

pub struct Running {
    pub address: SocketAddr,
    pub stop: Option<oneshot::Sender<()>>,
    pub done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Starts a server and waits until its health check says SERVING.
pub async fn start(config: AppConfig) -> Running {
    start_engine(Engine::new(config).expect("a valid configuration")).await
}

/// Starts a server on `engine` (so the test can read its metrics) and waits until SERVING.
pub async fn start_engine(engine: std::sync::Arc<Engine>) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(aki_grpc::serve(listener, engine, async move {
        let _ = stopped.await;
    }));
    let mut health = loop {
        if let Ok(client) = health_client(address).await {
            break client;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    for _ in 0..500 {
        let status = health.check(HealthCheckRequest { service: String::new() }).await.map(|r| r.into_inner().status);
        if status.is_ok_and(|s| s == 1) {
            return Running { address, stop: Some(stop), done };
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the server never reported SERVING");
}

impl Running {
    pub async fn client(&self) -> EmbedderClient<Channel> {
        EmbedderClient::connect(format!("http://{}", self.address)).await.expect("connect")
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.done.await.expect("server task").expect("server stopped cleanly");
    }
}

pub fn reference(index: usize) -> (String, Vec<f32>, usize) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../backend-candle/tests/fixtures/reference.json");
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
    let item = &all["items"][index];
    let vector =
        item["embedding"].as_array().expect("embedding").iter().map(|x| x.as_f64().expect("f64") as f32).collect();
    (item["text"].as_str().expect("text").to_string(), vector, item["tokens"].as_u64().expect("tokens") as usize)
}
