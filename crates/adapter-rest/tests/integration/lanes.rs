//! Lanes and tenants over HTTP: the `priority` field and `x-priority` header choose the lane
//! (`x-lane` says which), named keys are tenants with their own token rate (429 with
//! `Retry-After`), and `/metrics` shows the lanes, the tenants and the wasted tokens.

use aki_service::{ApiKey, TenantKey};
use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{config, get, ready_app, send};

fn key(name: &str, tokens_per_minute: Option<u32>) -> TenantKey {
    TenantKey { name: name.into(), key: ApiKey(format!("key-{name}")), weight: 1, tokens_per_minute }
}

#[tokio::test]
async fn size_decides_the_lane_unless_the_body_or_header_asks() {
    let mut config = config();
    config.lanes.bulk_above_tokens = 64;
    let (app, _) = ready_app(config).await;
    let lane = |reply: &crate::support::Reply| reply.headers["x-lane"].to_str().expect("ascii").to_string();
    let short = json!({"texts": ["a query"]}).to_string();
    let long = json!({"texts": vec!["a passage of a document to index"; 20]}).to_string();
    for (path, body, headers, want) in [
        ("/api/v1/embed", short.clone(), vec![], "interactive"),
        ("/api/v1/embed", long.clone(), vec![], "bulk"),
        ("/api/v1/embed", json!({"texts": ["q"], "priority": "bulk"}).to_string(), vec![], "bulk"),
        ("/api/v1/embed", short.clone(), vec![("x-priority", "bulk")], "bulk"),
        ("/api/v1/embed", long.clone(), vec![("x-priority", "interactive")], "interactive"),
        // The body's field wins over the header.
        (
            "/api/v1/embed",
            json!({"texts": ["q"], "priority": "interactive"}).to_string(),
            vec![("x-priority", "bulk")],
            "interactive",
        ),
        ("/v1/embeddings", json!({"input": "q", "priority": "bulk"}).to_string(), vec![], "bulk"),
        ("/embed", json!({"inputs": "q", "priority": "bulk"}).to_string(), vec![], "bulk"),
        ("/embed", json!({"inputs": "q"}).to_string(), vec![], "interactive"),
    ] {
        let reply = send(&app, Method::POST, path, &body, &headers).await;
        assert_eq!(reply.status, StatusCode::OK, "{path} {body}: {}", reply.text);
        assert_eq!(lane(&reply), want, "{path} {body} {headers:?}");
    }
    let bad = send(&app, Method::POST, "/api/v1/embed", &short, &[("x-priority", "urgent")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert!(bad.text.contains("x-priority"), "{}", bad.text);
    let field =
        send(&app, Method::POST, "/api/v1/embed", &json!({"texts": ["q"], "priority": "soon"}).to_string(), &[]).await;
    assert_eq!(field.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", field.text);
    let metrics = get(&app, "/metrics").await.text;
    for series in
        [r#"aki_queue_time_seconds_count{lane="bulk"}"#, r#"aki_queue_time_seconds_count{lane="interactive"}"#]
    {
        assert!(metrics.contains(series), "{series} missing from /metrics");
    }
    assert!(metrics.contains(r#"aki_queue_depth{lane="bulk""#), "no bulk queue depth in /metrics");
}

#[tokio::test]
async fn each_named_key_is_a_tenant_with_its_own_token_rate() {
    let mut config = config();
    config.api_keys = vec![key("search", Some(40)), key("index", None)];
    let (app, _) = ready_app(config).await;
    let body = json!({"texts": ["the same short text"]}).to_string();
    let as_tenant = |name: &str| format!("Bearer key-{name}");
    let search = as_tenant("search");
    let first = send(&app, Method::POST, "/api/v1/embed", &body, &[("authorization", search.as_str())]).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let tokens: u32 = first.body["usage"]["tokens"].as_u64().expect("usage") as u32;
    // Send until the 40 tokens a minute are spent: then 429 with a Retry-After of seconds.
    let mut refused = None;
    for _ in 0..(40 / tokens + 1) {
        let reply = send(&app, Method::POST, "/api/v1/embed", &body, &[("authorization", search.as_str())]).await;
        if reply.status != StatusCode::OK {
            refused = Some(reply);
            break;
        }
    }
    let refused = refused.expect("the rate ran out");
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.text);
    let retry: u64 = refused.headers["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert!(refused.text.contains("tokens per minute"), "{}", refused.text);
    // Another tenant is not limited by it, and an unknown key is still 401.
    let index = as_tenant("index");
    let other = send(&app, Method::POST, "/api/v1/embed", &body, &[("authorization", index.as_str())]).await;
    assert_eq!(other.status, StatusCode::OK, "{}", other.text);
    let unknown = send(&app, Method::POST, "/api/v1/embed", &body, &[("authorization", "Bearer nope")]).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    let metrics = get(&app, "/metrics").await.text;
    for series in [
        r#"outcome="overloaded",route="/api/v1/embed",tenant="search""#,
        r#"outcome="ok",route="/api/v1/embed",tenant="index""#,
        r#"aki_tokens_total{tenant="search"}"#,
        "aki_wasted_tokens_total",
    ] {
        assert!(metrics.contains(series), "{series} missing from /metrics:\n{metrics}");
    }
}
