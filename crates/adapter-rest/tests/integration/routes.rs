//! Each route's success path on the real model, compared with the reference embeddings.

use aki_core::vector::cosine;
use axum::http::StatusCode;
use base64::Engine as _;
use serde_json::json;

use crate::support::{config, floats, get, post, ready_app, reference};

#[tokio::test]
async fn native_embed_matches_the_reference_and_reports_usage_and_timing() {
    let (app, _) = ready_app(config()).await;
    let (text0, want0, tokens0) = reference(0);
    let (text1, want1, tokens1) = reference(1);
    let reply = post(&app, "/api/v1/embed", json!({"texts": [text0, text1]})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["dimension"], 384);
    let vectors = reply.body["embeddings"].as_array().expect("embeddings");
    assert!(cosine(&floats(&vectors[0]), &want0) >= 0.9999);
    assert!(cosine(&floats(&vectors[1]), &want1) >= 0.9999);
    assert_eq!(reply.body["usage"]["tokens"], tokens0 + tokens1);
    assert_eq!(reply.headers["x-compute-tokens"], (tokens0 + tokens1).to_string().as_str());
    for header in ["x-queue-time", "x-inference-time", "x-total-time", "x-tokenization-time", "x-request-id"] {
        assert!(reply.headers.contains_key(header), "missing {header}");
    }
    let short = post(&app, "/api/v1/embed", json!({"texts": ["hi"], "dimensions": 64})).await;
    let v = floats(&short.body["embeddings"][0]);
    assert_eq!((short.body["dimension"].as_u64(), v.len()), (Some(64), 64));
    assert!((v.iter().map(|x| x * x).sum::<f32>().sqrt() - 1.0).abs() < 1e-4, "renormalised after truncation");
}

#[tokio::test]
async fn openai_embeddings_float_base64_and_token_inputs() {
    let (app, _) = ready_app(config()).await;
    let (text, want, tokens) = reference(2);
    let float = post(&app, "/v1/embeddings", json!({"input": text, "model": config().model})).await;
    assert_eq!(float.status, StatusCode::OK, "{}", float.text);
    assert_eq!(float.body["object"], "list");
    assert_eq!(float.body["data"][0]["object"], "embedding");
    assert_eq!(float.body["data"][0]["index"], 0);
    assert_eq!(float.body["usage"]["prompt_tokens"], tokens);
    assert_eq!(float.body["usage"]["total_tokens"], tokens);
    assert!(cosine(&floats(&float.body["data"][0]["embedding"]), &want) >= 0.9999);

    let b64 = post(&app, "/v1/embeddings", json!({"input": [text], "encoding_format": "base64"})).await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.body["data"][0]["embedding"].as_str().expect("base64 string"))
        .expect("valid base64");
    let decoded: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    assert_eq!(decoded.len(), 384);
    assert!(cosine(&decoded, &want) >= 0.9999);

    // Token ids as /tokenize returns them give the same vector as the text.
    let ids = post(&app, "/tokenize", json!({"inputs": text})).await.body[0]
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| t["id"].as_u64().expect("id"))
        .collect::<Vec<_>>();
    let by_ids = post(&app, "/v1/embeddings", json!({"input": ids})).await;
    assert!(cosine(&floats(&by_ids.body["data"][0]["embedding"]), &want) >= 0.9999, "{}", by_ids.text);
    let by_lists = post(&app, "/v1/embeddings", json!({"input": [ids.clone(), ids], "dimensions": 32})).await;
    assert_eq!(by_lists.body["data"].as_array().expect("data").len(), 2);
    assert_eq!(floats(&by_lists.body["data"][1]["embedding"]).len(), 32);
}

#[tokio::test]
async fn tei_embed_and_tokenize() {
    let (app, _) = ready_app(config()).await;
    let (text, want, _) = reference(3);
    let one = post(&app, "/embed", json!({"inputs": text})).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.text);
    assert_eq!(one.body.as_array().expect("2-D").len(), 1, "a single input still gives a 2-D array");
    assert!(cosine(&floats(&one.body[0]), &want) >= 0.9999);
    let raw = post(&app, "/embed", json!({"inputs": [text], "normalize": false})).await;
    let norm = floats(&raw.body[0]).iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() > 1e-3, "normalize=false returns the raw mean");

    let tokens = post(&app, "/tokenize", json!({"inputs": ["Hello world"]})).await;
    assert_eq!(tokens.status, StatusCode::OK);
    let first = &tokens.body[0];
    assert_eq!(first[0]["text"], "[CLS]");
    assert_eq!(first[0]["special"], true);
    assert_eq!(first[0]["start"], serde_json::Value::Null);
    assert_eq!(first[1], json!({"id": 7592, "text": "hello", "special": false, "start": 0, "stop": 5}));
    let plain = post(&app, "/tokenize", json!({"inputs": "Hello world", "add_special_tokens": false})).await;
    assert_eq!(plain.body[0].as_array().expect("tokens").len(), 2);
}

#[tokio::test]
async fn info_models_health_ready_metrics_and_openapi() {
    let (app, _) = ready_app(config()).await;
    let info = get(&app, "/info").await;
    assert_eq!(info.status, StatusCode::OK);
    assert_eq!((info.body["dimension"].as_u64(), info.body["max_input_tokens"].as_u64()), (Some(384), Some(256)));
    assert_eq!(info.body["device"], "cpu");
    assert_eq!(info.body["max_batch_size"], 32);
    let models = get(&app, "/v1/models").await;
    assert_eq!(models.body["data"][0]["id"], config().model);
    assert_eq!(get(&app, "/health").await.status, StatusCode::OK);
    assert_eq!(get(&app, "/ready").await.status, StatusCode::OK);

    post(&app, "/api/v1/embed", json!({"texts": ["one", "two"]})).await;
    let metrics = get(&app, "/metrics").await.text;
    for name in [
        "aki_requests_total{outcome=\"ok\",route=\"/api/v1/embed\",tenant=\"default\"} 1",
        "aki_request_duration_seconds_bucket",
        "aki_queue_depth",
        "aki_batch_size_bucket",
        "aki_batch_tokens_bucket",
        "aki_inference_duration_seconds_bucket",
        "aki_tokens_total",
        "aki_cache_hits_total",
        "aki_cache_misses_total",
        "aki_models_loaded 1",
    ] {
        assert!(metrics.contains(name), "metrics lack {name}:\n{metrics}");
    }

    let openapi = get(&app, "/openapi.json").await;
    let paths = openapi.body["paths"].as_object().expect("paths");
    for path in [
        "/api/v1/embed",
        "/v1/embeddings",
        "/v1/models",
        "/embed",
        "/tokenize",
        "/rerank",
        "/v1/rerank",
        "/v2/rerank",
        "/info",
        "/health",
        "/ready",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(paths.contains_key(path), "openapi.json lacks {path}");
        assert_ne!(get(&app, path).await.status, StatusCode::NOT_FOUND, "{path} is documented but not routed");
    }
}

#[tokio::test]
async fn the_result_cache_answers_repeats_when_configured() {
    let mut cached = config();
    cached.result_cache.max_bytes = 1 << 20;
    let (app, engine) = ready_app(cached).await;
    let first = post(&app, "/api/v1/embed", json!({"texts": ["repeat me", "and me"]})).await;
    let second = post(&app, "/api/v1/embed", json!({"texts": ["and me", "repeat me"]})).await;
    assert_eq!(first.body["embeddings"][0], second.body["embeddings"][1]);
    let metrics = engine.render_metrics();
    let model = &engine.config.model;
    assert!(metrics.contains(&format!("aki_cache_hits_total{{model=\"{model}\"}} 2")), "{metrics}");
    assert!(metrics.contains(&format!("aki_cache_misses_total{{model=\"{model}\"}} 2")), "{metrics}");
}

#[tokio::test]
async fn cors_headers_only_when_configured() {
    use axum::http::Method;

    use crate::support::send;

    let (app, _) = ready_app(config()).await;
    let plain = send(&app, Method::GET, "/health", "", &[("origin", "https://app.example")]).await;
    assert!(!plain.headers.contains_key("access-control-allow-origin"), "CORS is off by default");

    let mut open = config();
    open.cors_allow_origins = vec!["https://app.example".into()];
    let (app, _) = ready_app(open).await;
    let allowed = send(&app, Method::GET, "/health", "", &[("origin", "https://app.example")]).await;
    assert_eq!(allowed.headers["access-control-allow-origin"], "https://app.example");
    let other = send(&app, Method::GET, "/health", "", &[("origin", "https://evil.example")]).await;
    assert!(!other.headers.contains_key("access-control-allow-origin"));
}
