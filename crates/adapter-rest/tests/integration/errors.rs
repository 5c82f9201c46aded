//! Bad input, limits, auth, readiness and overload: each a 4xx/5xx in the route's own error
//! shape, never a 500 and never a panic.

use std::sync::Arc;

use aki_service::ApiKey;
use aki_wiring::Engine;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use aki_core::vector::cosine;

use crate::support::{Reply, config, floats, get, post, ready_app, reference, send};

fn native(reply: &Reply, status: StatusCode, kind: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(reply.body["error"]["kind"], kind, "{}", reply.text);
    assert!(reply.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
}

fn openai(reply: &Reply, status: StatusCode, kind: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    let error = &reply.body["error"];
    assert_eq!(error["type"], kind, "{}", reply.text);
    assert!(
        error["message"].is_string() && error.get("param").is_some() && error.get("code").is_some(),
        "{}",
        reply.text
    );
}

fn tei(reply: &Reply, status: StatusCode, kind: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(reply.body["error_type"], kind, "{}", reply.text);
    assert!(reply.body["error"].is_string());
}

#[tokio::test]
async fn bad_bodies_get_4xx_in_each_route_shape() {
    let mut limited = config();
    limited.limits.max_inputs = 3;
    limited.limits.max_input_chars = 50;
    limited.limits.body_limit_bytes = 4096;
    let (app, _) = ready_app(limited).await;
    let long = "word ".repeat(1000);

    // Malformed JSON, wrong types, wrong content type, invalid UTF-8, unknown field.
    native(
        &send(&app, Method::POST, "/api/v1/embed", "{\"texts\": [", &[]).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    native(
        &post(&app, "/api/v1/embed", json!({"texts": "not a list"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_request",
    );
    native(
        &post(&app, "/api/v1/embed", json!({"texts": ["a"], "colour": 1})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_request",
    );
    let wrong_type =
        send(&app, Method::POST, "/api/v1/embed", "{\"texts\": [\"a\"]}", &[("content-type", "text/plain")]).await;
    native(&wrong_type, StatusCode::UNSUPPORTED_MEDIA_TYPE, "bad_request");
    let invalid_utf8 = String::from_utf8_lossy(b"{\"texts\": [\"\xff\"]}").replace('\u{fffd}', "\\udcff");
    let reply = send(&app, Method::POST, "/api/v1/embed", &invalid_utf8, &[]).await;
    assert!(reply.status.is_client_error(), "{}", reply.text);

    // Empty, too many, too long, bad dimensions, over-long without truncation, unknown model.
    native(&post(&app, "/api/v1/embed", json!({"texts": []})).await, StatusCode::BAD_REQUEST, "validation");
    native(
        &post(&app, "/api/v1/embed", json!({"texts": ["a", "b", "c", "d"]})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    );
    native(
        &post(&app, "/api/v1/embed", json!({"texts": ["x".repeat(51)]})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    );
    native(
        &post(&app, "/api/v1/embed", json!({"texts": ["a"], "dimensions": 0})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    );
    native(
        &post(&app, "/api/v1/embed", json!({"texts": ["a"], "dimensions": 385})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    );
    native(
        &post(&app, "/api/v1/embed", json!({"texts": ["a"], "model": "/etc"})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let too_big = json!({"texts": [long]});
    native(&post(&app, "/api/v1/embed", too_big.clone()).await, StatusCode::PAYLOAD_TOO_LARGE, "bad_request");

    // OpenAI shape.
    openai(&post(&app, "/v1/embeddings", json!({"input": []})).await, StatusCode::BAD_REQUEST, "invalid_request_error");
    openai(
        &post(&app, "/v1/embeddings", json!({"input": 12.5})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request_error",
    );
    openai(
        &post(&app, "/v1/embeddings", json!({"input": [999999]})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request_error",
    );
    let missing = post(&app, "/v1/embeddings", json!({"input": "a", "model": "text-embedding-3-small"})).await;
    openai(&missing, StatusCode::NOT_FOUND, "invalid_request_error");
    assert_eq!(missing.body["error"]["code"], "model_not_found");
    openai(&post(&app, "/v1/embeddings", too_big).await, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request_error");

    // TEI shape: truncation is off by default there, as in TEI.
    tei(&post(&app, "/embed", json!({"inputs": []})).await, StatusCode::BAD_REQUEST, "Empty");
    tei(
        &post(&app, "/embed", json!({"inputs": "a", "dimensions": 1000})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "Validation",
    );
    tei(&send(&app, Method::POST, "/embed", "nope", &[]).await, StatusCode::BAD_REQUEST, "Validation");
    tei(&post(&app, "/tokenize", json!({"inputs": 5})).await, StatusCode::UNPROCESSABLE_ENTITY, "Validation");
}

#[tokio::test]
async fn over_long_inputs_are_422_without_truncation_and_fine_with_it() {
    let (app, _) = ready_app(config()).await;
    let long = "word ".repeat(300);
    tei(&post(&app, "/embed", json!({"inputs": long})).await, StatusCode::UNPROCESSABLE_ENTITY, "Validation");
    assert_eq!(post(&app, "/embed", json!({"inputs": long, "truncate": true})).await.status, StatusCode::OK);
    native(
        &post(&app, "/api/v1/embed", json!({"texts": [long], "truncate": false})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    );
    let truncated = post(&app, "/api/v1/embed", json!({"texts": [long]})).await;
    assert_eq!(truncated.body["usage"]["tokens"], 256);
}

#[tokio::test]
async fn an_api_key_guards_the_api_but_not_health_ready_or_metrics() {
    let mut keyed = config();
    keyed.api_key = Some(ApiKey("s3cret".into()));
    let (app, _) = ready_app(keyed).await;
    let body = json!({"texts": ["a"]}).to_string();
    native(&send(&app, Method::POST, "/api/v1/embed", &body, &[]).await, StatusCode::UNAUTHORIZED, "unauthorized");
    let wrong = send(&app, Method::POST, "/api/v1/embed", &body, &[("authorization", "Bearer nope")]).await;
    native(&wrong, StatusCode::UNAUTHORIZED, "unauthorized");
    let right = send(&app, Method::POST, "/api/v1/embed", &body, &[("authorization", "Bearer s3cret")]).await;
    assert_eq!(right.status, StatusCode::OK);
    let openai_body = json!({"input": "a"}).to_string();
    openai(
        &send(&app, Method::POST, "/v1/embeddings", &openai_body, &[]).await,
        StatusCode::UNAUTHORIZED,
        "invalid_request_error",
    );
    tei(
        &send(&app, Method::POST, "/embed", &json!({"inputs": "a"}).to_string(), &[]).await,
        StatusCode::UNAUTHORIZED,
        "Validation",
    );
    assert_eq!(send(&app, Method::GET, "/v1/models", "", &[]).await.status, StatusCode::UNAUTHORIZED);
    native(&send(&app, Method::GET, "/info", "", &[]).await, StatusCode::UNAUTHORIZED, "unauthorized");
    let info = send(&app, Method::GET, "/info", "", &[("authorization", "Bearer s3cret")]).await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.text);
    for open in ["/health", "/ready", "/metrics"] {
        assert_eq!(get(&app, open).await.status, StatusCode::OK, "{open} stays open");
    }
}

#[tokio::test]
async fn before_the_model_is_warm_ready_and_embed_answer_503() {
    let engine = Engine::new(config()).expect("a valid configuration");
    let app = aki_rest::app(Arc::clone(&engine));
    assert_eq!(get(&app, "/health").await.status, StatusCode::OK);
    assert_eq!(get(&app, "/ready").await.status, StatusCode::SERVICE_UNAVAILABLE);
    native(&post(&app, "/api/v1/embed", json!({"texts": ["a"]})).await, StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    openai(&post(&app, "/v1/embeddings", json!({"input": "a"})).await, StatusCode::SERVICE_UNAVAILABLE, "server_error");
    tei(&post(&app, "/embed", json!({"inputs": "a"})).await, StatusCode::SERVICE_UNAVAILABLE, "Unhealthy");
    engine.start().await.expect("loads");
    assert_eq!(get(&app, "/ready").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_concurrency_bound_a_request_is_429_at_once_while_the_others_run() {
    let mut one_at_a_time = config();
    one_at_a_time.limits.max_concurrent_requests = 1;
    let (app, engine) = ready_app(one_at_a_time).await;
    let texts: Vec<Value> =
        (0..96).map(|i| json!(format!("sentence number {i} keeps the model busy for a while"))).collect();
    let busy = tokio::spawn({
        let app = app.clone();
        async move { post(&app, "/api/v1/embed", json!({"texts": texts})).await }
    });
    while engine.service.in_flight() == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let started = std::time::Instant::now();
    let refused = post(&app, "/v1/embeddings", json!({"input": "one more"})).await;
    openai(&refused, StatusCode::TOO_MANY_REQUESTS, "rate_limit_error");
    assert_eq!(refused.headers["retry-after"], "1");
    assert!(started.elapsed() < std::time::Duration::from_millis(200), "refused at once");
    assert!(!busy.is_finished(), "the admitted request is still running");
    assert_eq!(busy.await.expect("task").status, StatusCode::OK);
    let metrics = engine.render_metrics();
    let refusal = "aki_requests_total{outcome=\"overloaded\",route=\"/v1/embeddings\",tenant=\"default\"} 1";
    assert!(metrics.contains(refusal), "{metrics}");
}

#[tokio::test]
async fn a_full_queue_is_429_with_retry_after_and_a_slow_request_times_out() {
    let mut tiny_queue = config();
    tiny_queue.batching.queue_capacity = 1;
    let (app, _) = ready_app(tiny_queue).await;
    let reply = post(&app, "/api/v1/embed", json!({"texts": ["one", "two"]})).await;
    native(&reply, StatusCode::TOO_MANY_REQUESTS, "overloaded");
    assert_eq!(reply.headers["retry-after"], "1");
    let tei_reply = post(&app, "/embed", json!({"inputs": ["one", "two"]})).await;
    tei(&tei_reply, StatusCode::TOO_MANY_REQUESTS, "Overloaded");

    let mut hasty = config();
    hasty.limits.request_timeout_ms = 1;
    let (app, _) = ready_app(hasty).await;
    let texts: Vec<Value> = (0..64).map(|i| json!(format!("sentence number {i} is here to take time"))).collect();
    native(&post(&app, "/api/v1/embed", json!({"texts": texts})).await, StatusCode::GATEWAY_TIMEOUT, "timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_token_lists_sent_among_good_requests_fail_alone() {
    let (app, _) = ready_app(config()).await;
    let good: Vec<_> = (0..24)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                let (text, want, _) = reference(i);
                (post(&app, "/api/v1/embed", json!({"texts": [text]})).await, want)
            })
        })
        .collect();
    let long_ids: Vec<u32> = std::iter::once(101).chain(std::iter::repeat_n(1996, 598)).chain([102]).collect();
    let bad: Vec<_> = [json!([[101, 999_999, 102]]), json!([[]]), json!([[101, 102], [5, 999_999]])]
        .into_iter()
        .map(|input| {
            let app = app.clone();
            tokio::spawn(async move { post(&app, "/v1/embeddings", json!({"input": input})).await })
        })
        .collect();
    let cut = post(&app, "/v1/embeddings", json!({"input": [long_ids]})).await;
    assert_eq!(cut.status, StatusCode::OK, "an over-long token list is cut to the model's maximum: {}", cut.text);
    assert_eq!(cut.body["usage"]["prompt_tokens"], 256);
    for call in bad {
        openai(&call.await.expect("task"), StatusCode::UNPROCESSABLE_ENTITY, "invalid_request_error");
    }
    for call in good {
        let (reply, want) = call.await.expect("task");
        assert_eq!(reply.status, StatusCode::OK, "an innocent request failed: {}", reply.text);
        assert!(cosine(&floats(&reply.body["embeddings"][0]), &want) >= 0.9999);
    }
}
