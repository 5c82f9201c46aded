//! REST and gRPC parity: one table of requests, each sent to `aki-rest` (in process) and to
//! `aki-grpc` (over a real connection), each server on its own engine; both must give the same
//! outcome class, the same vectors and usage, and the same metric increments.

use std::collections::BTreeMap;
use std::sync::Arc;

use aki_core::vector::cosine;
use aki_grpc::pb;
use aki_service::ApiKey;
use aki_wiring::{AppConfig, Engine};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::{config, start_engine};

const KEY: &str = "parity-key";

/// One request, as both servers are sent it.
struct Case {
    name: &'static str,
    texts: Vec<String>,
    token_ids: Vec<Vec<u32>>,
    model: Option<&'static str>,
    truncate: Option<bool>,
    dimensions: Option<u32>,
    windows: bool,
    key: Option<&'static str>,
}

impl Case {
    fn texts(name: &'static str, texts: &[&str]) -> Self {
        Self {
            name,
            texts: texts.iter().map(|t| (*t).to_string()).collect(),
            token_ids: Vec::new(),
            model: None,
            truncate: None,
            dimensions: None,
            windows: false,
            key: Some(KEY),
        }
    }

    fn ids(name: &'static str, token_ids: Vec<Vec<u32>>) -> Self {
        Self { token_ids, ..Self::texts(name, &[]) }
    }

    /// The REST route and body: token ids go to the OpenAI route (the native one takes texts).
    fn rest(&self) -> (&'static str, Value) {
        if self.token_ids.is_empty() {
            let mut body = json!({"texts": self.texts, "model": self.model, "truncate": self.truncate, "dimensions": self.dimensions});
            if self.windows {
                body["long_inputs"] = json!("windows");
            }
            ("/api/v1/embed", body)
        } else {
            ("/v1/embeddings", json!({"input": self.token_ids, "model": self.model, "dimensions": self.dimensions}))
        }
    }

    fn grpc(&self) -> tonic::Request<pb::EmbedRequest> {
        let message = pb::EmbedRequest {
            texts: self.texts.clone(),
            token_ids: self.token_ids.iter().map(|ids| pb::TokenIds { ids: ids.clone() }).collect(),
            model: self.model.map(str::to_string),
            truncate: self.truncate,
            dimensions: self.dimensions,
            windows: self.windows.then_some(true),
            ..Default::default()
        };
        let mut request = tonic::Request::new(message);
        if let Some(key) = self.key {
            request.metadata_mut().insert("authorization", format!("Bearer {key}").parse().expect("ascii"));
        }
        request
    }
}

/// What a server answered, in transport-neutral terms.
#[derive(Debug)]
struct Answer {
    class: &'static str,
    vectors: Vec<Vec<f32>>,
    tokens: u64,
}

pub(crate) fn rest_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200 => "ok",
        400 | 422 => "invalid",
        401 => "unauthorized",
        404 => "not_found",
        429 => "overloaded",
        504 => "timeout",
        other => panic!("unexpected REST status {other}"),
    }
}

pub(crate) fn grpc_class(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::InvalidArgument => "invalid",
        tonic::Code::Unauthenticated => "unauthorized",
        tonic::Code::NotFound => "not_found",
        tonic::Code::ResourceExhausted => "overloaded",
        tonic::Code::DeadlineExceeded => "timeout",
        other => panic!("unexpected gRPC status {other:?}"),
    }
}

async fn ask_rest(app: &axum::Router, case: &Case) -> Answer {
    let (path, body) = case.rest();
    let mut request = Request::post(path).header("content-type", "application/json");
    if let Some(key) = case.key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let response =
        app.clone().oneshot(request.body(Body::from(body.to_string())).expect("request")).await.expect("call");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    let body: Value = serde_json::from_slice(&bytes).expect("JSON body");
    let floats = |v: &Value| v.as_array().expect("vector").iter().map(|x| x.as_f64().expect("f64") as f32).collect();
    let (vectors, tokens) = match (status, path) {
        (StatusCode::OK, "/api/v1/embed") => (
            body["embeddings"].as_array().expect("embeddings").iter().map(floats).collect(),
            body["usage"]["tokens"].as_u64().expect("usage"),
        ),
        (StatusCode::OK, _) => (
            body["data"].as_array().expect("data").iter().map(|d| floats(&d["embedding"])).collect(),
            body["usage"]["prompt_tokens"].as_u64().expect("usage"),
        ),
        _ => (Vec::new(), 0),
    };
    Answer { class: rest_class(status), vectors, tokens }
}

async fn ask_grpc(client: &mut pb::embedder_client::EmbedderClient<tonic::transport::Channel>, case: &Case) -> Answer {
    match client.embed(case.grpc()).await {
        Ok(reply) => {
            let reply = reply.into_inner();
            Answer {
                class: "ok",
                tokens: u64::from(reply.usage.expect("usage").prompt_tokens),
                vectors: reply.embeddings.into_iter().map(|e| e.values).collect(),
            }
        }
        Err(status) => Answer { class: grpc_class(status.code()), vectors: Vec::new(), tokens: 0 },
    }
}

/// Request counts by outcome (over every route) and tokens, from a Prometheus text.
pub(crate) fn counters(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let value: f64 = value.parse().unwrap_or(0.0);
        if series.starts_with("aki_requests_total") {
            let outcome = series.split("outcome=\"").nth(1).and_then(|s| s.split('"').next()).expect("outcome");
            *out.entry(format!("requests {outcome}")).or_default() += value;
        } else if series == "aki_tokens_total" {
            out.insert("tokens".into(), value);
        }
    }
    out
}

pub(crate) fn delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, d)| *d != 0.0)
        .collect()
}

fn parity_config() -> AppConfig {
    let mut config = config();
    config.api_key = Some(ApiKey(KEY.into()));
    config.limits.max_inputs = 4;
    config.limits.max_input_chars = 300;
    config
}

/// Runs `cases` against a REST app and a gRPC server, each on its own engine from `config`.
async fn compare(config: AppConfig, cases: &[Case]) {
    let rest_engine = Engine::new(config.clone()).expect("a valid configuration");
    rest_engine.start().await.expect("REST model loads");
    let app = aki_rest::app(Arc::clone(&rest_engine));
    let grpc_engine = Engine::new(config).expect("a valid configuration");
    let server = start_engine(Arc::clone(&grpc_engine)).await;
    let mut client = server.client().await;
    for case in cases {
        let (rest_before, grpc_before) =
            (counters(&rest_engine.render_metrics()), counters(&grpc_engine.render_metrics()));
        let rest = ask_rest(&app, case).await;
        let grpc = ask_grpc(&mut client, case).await;
        let name = case.name;
        assert_eq!(rest.class, grpc.class, "{name}: REST {rest:?} vs gRPC {grpc:?}");
        if case.windows {
            assert!(rest.class == "ok" && rest.tokens > 256, "{name}: every window's tokens, {rest:?}");
        }
        assert_eq!((rest.vectors.len(), rest.tokens), (grpc.vectors.len(), grpc.tokens), "{name}: shape and usage");
        for (r, g) in rest.vectors.iter().zip(&grpc.vectors) {
            assert_eq!(r.len(), g.len(), "{name}: dimensions");
            assert!(cosine(r, g) >= 0.99999, "{name}: vectors differ");
        }
        let rest_delta = delta(&rest_before, &counters(&rest_engine.render_metrics()));
        let grpc_delta = delta(&grpc_before, &counters(&grpc_engine.render_metrics()));
        assert_eq!(rest_delta, grpc_delta, "{name}: metric increments");
        assert_eq!(rest_delta.keys().filter(|k| k.starts_with("requests")).count(), 1, "{name}: one request counted");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_and_grpc_give_the_same_outcome_vectors_usage_and_metrics() {
    let long = "!".repeat(290); // one token per character: 292 tokens with [CLS] and [SEP]
    let cases = [
        Case::texts("good texts", &["The quick brown fox.", "A second, different sentence."]),
        Case { dimensions: Some(16), ..Case::texts("good texts, 16 dimensions", &["Matryoshka"]) },
        Case::ids("token ids", vec![vec![101, 7592, 2088, 102], vec![101, 102]]),
        Case::texts("no input", &[]),
        Case::texts("too many inputs", &["a", "b", "c", "d", "e"]),
        Case::texts("input over the character limit", &[&"x".repeat(301)]),
        Case { dimensions: Some(0), ..Case::texts("zero dimensions", &["a"]) },
        Case { dimensions: Some(385), ..Case::texts("too many dimensions", &["a"]) },
        Case { model: Some("not/served"), ..Case::texts("model not served", &["a"]) },
        Case { truncate: Some(false), ..Case::texts("too many tokens without truncation", &[&long]) },
        Case { windows: true, ..Case::texts("a long input in windows", &[&long]) },
        Case::ids("token id outside the vocabulary", vec![vec![101, 999_999, 102]]),
        Case::ids("empty token list", vec![vec![]]),
        Case { key: None, ..Case::texts("missing key", &["a"]) },
        Case { key: Some("wrong"), ..Case::texts("wrong key", &["a"]) },
    ];
    compare(parity_config(), &cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_deadline_is_a_timeout_on_both() {
    let mut hasty = parity_config();
    hasty.limits.request_timeout_ms = 1;
    let many: Vec<String> = (0..4).map(|i| format!("sentence {i} {}", "with many words ".repeat(12))).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    compare(hasty, &[Case::texts("past the deadline", &refs)]).await;
}

#[test]
fn both_servers_log_each_error_kind_at_the_same_level() {
    use aki_core::ErrorKind::*;
    for kind in [Validation, Empty, Unauthorized, Overloaded, Unavailable, Timeout, NotFound, Backend, Internal] {
        assert_eq!(aki_grpc::failure_level(kind), aki_rest::failure_level(kind), "{kind:?}");
    }
}
