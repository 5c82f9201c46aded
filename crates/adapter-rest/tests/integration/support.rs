//! Shared set-up: an engine on the real installed model, and one-shot requests.

use std::sync::Arc;

use aki_core::paths;
use aki_wiring::{AppConfig, Engine};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

/// The installed default model's directory; fails (never skips) when it is missing.
pub fn model_dir() -> String {
    let dir = paths::installed_model_dir(paths::DEFAULT_MODEL);
    assert!(
        dir.join("model.safetensors").is_file(),
        "model missing in {}: run `cargo xtask fetch-model`",
        dir.display()
    );
    dir.to_string_lossy().into_owned()
}

/// A configuration serving the real model on the CPU.
pub fn config() -> AppConfig {
    let mut config = AppConfig { model: model_dir(), ..AppConfig::default() };
    config.backend.device = "cpu".into();
    config
}

/// An app whose engine has loaded and warmed its model.
pub async fn ready_app(config: AppConfig) -> (Router, Arc<Engine>) {
    let engine = Engine::new(config).expect("a valid configuration");
    engine.start().await.expect("model loads");
    (aki_rest::app(Arc::clone(&engine)), engine)
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

/// Sends one request; `body` is sent as-is with a JSON content type unless `content_type`
/// says otherwise.
pub async fn send(app: &Router, method: Method, path: &str, body: &str, extra: &[(&str, &str)]) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    if !extra.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
        request = request.header("content-type", "application/json");
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let response =
        app.clone().oneshot(request.body(Body::from(body.to_string())).expect("request")).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply { status, headers, body, text }
}

pub async fn post(app: &Router, path: &str, body: Value) -> Reply {
    send(app, Method::POST, path, &body.to_string(), &[]).await
}

pub async fn get(app: &Router, path: &str) -> Reply {
    send(app, Method::GET, path, "", &[]).await
}

/// The reference embedding of fixture `index` and its text.
pub fn reference(index: usize) -> (String, Vec<f32>, usize) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../backend-candle/tests/fixtures/reference.json");
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
    let item = &all["items"][index];
    let vector =
        item["embedding"].as_array().expect("embedding").iter().map(|x| x.as_f64().expect("f64") as f32).collect();
    (item["text"].as_str().expect("text").to_string(), vector, item["tokens"].as_u64().expect("tokens") as usize)
}

pub fn floats(value: &Value) -> Vec<f32> {
    value.as_array().expect("array").iter().map(|x| x.as_f64().expect("number") as f32).collect()
}
