//! Lanes and tenants over gRPC: `x-priority` metadata chooses the lane (`x-lane` in the answer's
//! metadata says which), a stream is one requester whose messages' tokens add up, and a named
//! key's token rate answers RESOURCE_EXHAUSTED with `retry-after`.

use std::sync::Arc;

use aki_grpc::pb;
use aki_service::{ApiKey, TenantKey};
use aki_wiring::Engine;
use tonic::Code;

use crate::support::{config, start, start_engine};

fn request(text: &str) -> pb::EmbedRequest {
    pb::EmbedRequest { texts: vec![text.to_string()], ..Default::default() }
}

/// The count of answered requests that waited in `lane`, from the engine's metrics.
fn answered_in(engine: &Engine, lane: &str) -> u64 {
    let series = format!("aki_queue_time_seconds_count{{lane=\"{lane}\"}} ");
    engine.render_metrics().lines().find_map(|l| l.strip_prefix(&series)?.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_chooses_the_lane_and_a_long_stream_becomes_bulk() {
    let mut config = config();
    config.lanes.bulk_above_tokens = 64;
    let engine = Engine::new(config).expect("a valid configuration");
    let server = start_engine(Arc::clone(&engine)).await;
    let mut client = server.client().await;
    let lane_of = |metadata: &tonic::metadata::MetadataMap| {
        metadata.get("x-lane").and_then(|v| v.to_str().ok()).map(str::to_string)
    };
    let plain = client.embed(request("a query")).await.expect("embed");
    assert_eq!(lane_of(plain.metadata()).as_deref(), Some("interactive"));
    assert!(plain.metadata().get("x-queue-time").is_some());
    let mut asked = tonic::Request::new(request("a query"));
    asked.metadata_mut().insert("x-priority", "bulk".parse().expect("ascii"));
    assert_eq!(lane_of(client.embed(asked).await.expect("embed").metadata()).as_deref(), Some("bulk"));
    let mut bad = tonic::Request::new(request("a query"));
    bad.metadata_mut().insert("x-priority", "urgent".parse().expect("ascii"));
    let refused = client.embed(bad).await.expect_err("a bad priority");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("x-priority"), "{}", refused.message());
    // 40 one-text messages of about 8 tokens on one stream: past 64 tokens they are bulk.
    let bulk_before = answered_in(&engine, "bulk");
    let messages: Vec<pb::EmbedRequest> = (0..40).map(|i| request(&format!("message number {i}"))).collect();
    let answers = client.embed_stream(tokio_stream::iter(messages)).await.expect("stream").into_inner();
    let answers: Vec<pb::EmbedResponse> = tokio_stream::StreamExt::collect::<Vec<_>>(answers)
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("answers");
    assert!(answers.iter().all(|a| a.error.is_none() && a.embeddings.len() == 1));
    let bulk = answered_in(&engine, "bulk") - bulk_before;
    assert!((25..40).contains(&bulk), "{bulk} of the stream's 40 messages were bulk");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_token_rate_is_told_when_to_retry() {
    let mut config = config();
    let limited =
        TenantKey { name: "search".into(), key: ApiKey("key-s".into()), weight: 1, tokens_per_minute: Some(30) };
    config.api_keys = vec![limited];
    let server = start(config).await;
    let mut client = server.client().await;
    let authorized = || {
        let mut call = tonic::Request::new(request("the same short text"));
        call.metadata_mut().insert("authorization", "Bearer key-s".parse().expect("ascii"));
        call
    };
    let mut refused = None;
    for _ in 0..10 {
        if let Err(status) = client.embed(authorized()).await {
            refused = Some(status);
            break;
        }
    }
    let refused = refused.expect("the rate ran out");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{}", refused.message());
    let retry: u64 =
        refused.metadata().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok()).expect("seconds");
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    assert_eq!(client.embed(request("no key")).await.expect_err("no key").code(), Code::Unauthenticated);
    server.stop().await;
}
