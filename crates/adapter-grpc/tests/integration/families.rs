//! Every other model family with a named prompt, and a cross-encoder's `Rerank`, over gRPC: the
//! tiny models of `aki-backend-candle`'s tests against their sentence-transformers references.

use aki_core::vector::cosine;
use aki_grpc::pb;
use aki_wiring::AppConfig;
use serde_json::Value;
use tonic::Code;

use crate::support::start;

pub fn tiny(name: &str) -> (AppConfig, Value) {
    let dir = format!("{}/../backend-candle/tests/tiny/{name}", env!("CARGO_MANIFEST_DIR"));
    let reference = std::fs::read_to_string(format!("{dir}/reference.json")).expect("reference");
    let mut config = AppConfig { model: dir, metrics_port: 0, ..aki_grpc::default_config() };
    config.backend.device = "cpu".into();
    config.backend.dtype = Some("f32".into());
    (config, serde_json::from_str(&reference).expect("json"))
}

pub fn floats(value: &Value) -> Vec<f32> {
    value.as_array().expect("array").iter().map(|x| x.as_f64().expect("number") as f32).collect()
}

pub fn texts(reference: &Value, n: usize) -> Vec<String> {
    reference["inputs"].as_array().expect("inputs").iter().take(n).map(|t| t.as_str().expect("text").into()).collect()
}

#[tokio::test]
async fn each_family_embeds_with_a_named_prompt() {
    for (name, pooling) in [("xlm-roberta", "mean"), ("modernbert", "cls"), ("qwen3", "lasttoken")] {
        let (config, reference) = tiny(name);
        let server = start(config).await;
        let mut client = server.client().await;
        let info = client.info(pb::InfoRequest {}).await.expect("info").into_inner();
        assert_eq!((info.architecture.as_str(), info.task.as_str(), info.pooling.as_str()), (name, "embed", pooling));
        let (prompt_name, prompted) = reference["prompted"].as_object().expect("prompts").iter().next().expect("one");
        assert!(info.prompts.contains_key(prompt_name), "{name}");
        let request = pb::EmbedRequest {
            texts: texts(&reference, 4),
            prompt_name: Some(prompt_name.clone()),
            ..Default::default()
        };
        let reply = client.embed(request).await.expect("embed").into_inner();
        assert_eq!(reply.embeddings.len(), 4);
        for (got, want) in reply.embeddings.iter().zip(prompted["vectors"].as_array().expect("vectors")) {
            let c = cosine(&got.values, &floats(want));
            assert!(c >= 0.9999, "{name}: cosine {c}");
        }
        let both = pb::EmbedRequest {
            texts: vec!["a".into()],
            prompt_name: Some(prompt_name.clone()),
            prompt: Some("x".into()),
            ..Default::default()
        };
        assert_eq!(client.embed(both).await.expect_err("both").code(), Code::InvalidArgument);
        server.stop().await;
    }
}

#[tokio::test]
async fn the_cross_encoder_ranks_over_grpc() {
    let (config, reference) = tiny("bert-reranker");
    let server = start(config).await;
    let mut client = server.client().await;
    let scores = floats(&reference["scores"]);
    let request = pb::RerankRequest {
        query: reference["query"].as_str().expect("query").into(),
        texts: texts(&reference, 8),
        top_n: Some(3),
        ..Default::default()
    };
    let reply = client.rerank(request).await.expect("rerank").into_inner();
    assert_eq!(reply.ranks.len(), 3);
    let mut best: Vec<(usize, f32)> = scores[..8].iter().copied().enumerate().collect();
    best.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (rank, (index, score)) in reply.ranks.iter().zip(best) {
        assert_eq!(rank.index as usize, index);
        assert!((rank.score - score).abs() < 1e-4, "{} vs {score}", rank.score);
    }
    assert!(reply.usage.expect("usage").total_tokens > 0);
    let embed = pb::EmbedRequest { texts: vec!["a".into()], ..Default::default() };
    assert_eq!(client.embed(embed).await.expect_err("a reranker").code(), Code::InvalidArgument);
    server.stop().await;
}
