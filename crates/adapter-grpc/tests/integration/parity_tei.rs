//! REST and gRPC parity of TEI's calls beyond `embed`: `/embed_sparse`, `/embed_all` and
//! `/predict` sent to `aki-rest` and their `tei.v1` methods to `aki-grpc`, each server on its own
//! engine of the same tiny model; both must give the same outcome class, values, usage and
//! metric increments, for requests each model serves and ones it refuses.

use std::sync::Arc;

use aki_grpc::tei_pb;
use aki_wiring::Engine;
use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use tei_pb::embed_client::EmbedClient;
use tei_pb::predict_client::PredictClient;
use tonic::transport::Channel;
use tower::ServiceExt;

use crate::families::tiny;
use crate::parity::{counters, delta, grpc_class, rest_class};
use crate::support::start_engine;

/// Which call a case makes.
#[derive(Debug, Clone, Copy)]
enum Call {
    Sparse,
    All,
    Predict,
}

/// An answer in transport-neutral terms: its class, its values flattened (a sparse vector's
/// index and value pairs, token vectors row after row, scores by label name), its tokens.
#[derive(Debug, PartialEq)]
struct Answer {
    class: &'static str,
    values: Vec<f32>,
    tokens: u64,
}

fn by_label(mut scored: Vec<(String, f32)>) -> Vec<f32> {
    scored.sort_by(|a, b| a.0.cmp(&b.0));
    scored.into_iter().map(|(_, score)| score).collect()
}

async fn ask_rest(app: &axum::Router, call: Call, text: &str, truncate: bool) -> Answer {
    let path = match call {
        Call::Sparse => "/embed_sparse",
        Call::All => "/embed_all",
        Call::Predict => "/predict",
    };
    let body = json!({"inputs": text, "truncate": truncate}).to_string();
    let request = Request::post(path).header("content-type", "application/json").body(Body::from(body));
    let response = app.clone().oneshot(request.expect("request")).await.expect("call");
    let status = response.status();
    let tokens =
        response.headers().get("x-compute-tokens").map_or(0, |v| v.to_str().expect("ascii").parse().expect("count"));
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    let body: Value = serde_json::from_slice(&bytes).expect("JSON body");
    let number = |v: &Value| v.as_f64().expect("number") as f32;
    let values = match (status.is_success(), call) {
        (false, _) => Vec::new(),
        (true, Call::Sparse) => {
            body[0].as_array().expect("pairs").iter().flat_map(|p| [number(&p["index"]), number(&p["value"])]).collect()
        }
        (true, Call::All) => body[0]
            .as_array()
            .expect("tokens")
            .iter()
            .flat_map(|t| t.as_array().expect("vector").iter().map(number))
            .collect(),
        (true, Call::Predict) => by_label(
            body.as_array()
                .expect("labels")
                .iter()
                .map(|p| (p["label"].as_str().expect("label").into(), number(&p["score"])))
                .collect(),
        ),
    };
    Answer { class: rest_class(status), values, tokens }
}

async fn ask_grpc(channel: &Channel, call: Call, text: &str, truncate: bool) -> Answer {
    let inputs = text.to_string();
    let answered = match call {
        Call::Sparse => EmbedClient::new(channel.clone())
            .embed_sparse(tei_pb::EmbedSparseRequest { inputs, truncate, ..Default::default() })
            .await
            .map(|r| {
                let r = r.into_inner();
                let values = r.sparse_embeddings.iter().flat_map(|p| [p.index as f32, p.value]).collect();
                (values, r.metadata)
            }),
        Call::All => EmbedClient::new(channel.clone())
            .embed_all(tei_pb::EmbedAllRequest { inputs, truncate, ..Default::default() })
            .await
            .map(|r| {
                let r = r.into_inner();
                (r.token_embeddings.into_iter().flat_map(|t| t.embeddings).collect(), r.metadata)
            }),
        Call::Predict => PredictClient::new(channel.clone())
            .predict(tei_pb::PredictRequest { inputs, truncate, ..Default::default() })
            .await
            .map(|r| {
                let r = r.into_inner();
                (by_label(r.predictions.into_iter().map(|p| (p.label, p.score)).collect()), r.metadata)
            }),
    };
    match answered {
        Ok((values, metadata)) => {
            Answer { class: "ok", values, tokens: u64::from(metadata.expect("metadata").compute_tokens) }
        }
        Err(status) => Answer { class: grpc_class(status.code()), values: Vec::new(), tokens: 0 },
    }
}

/// Runs each `(call, text, truncate)` of `cases` against both servers of the tiny model `name`.
async fn compare(name: &str, cases: &[(Call, &str, bool)]) {
    let (config, _) = tiny(name);
    let rest_engine = Engine::new(config.clone()).expect("a valid configuration");
    rest_engine.start().await.expect("REST model loads");
    let app = aki_rest::app(Arc::clone(&rest_engine));
    let grpc_engine = Engine::new(config).expect("a valid configuration");
    let server = start_engine(Arc::clone(&grpc_engine)).await;
    let channel =
        Channel::from_shared(format!("http://{}", server.address)).expect("uri").connect().await.expect("connect");
    for &(call, text, truncate) in cases {
        let what = format!("{name} {call:?} {text:?} truncate {truncate}");
        let before = (counters(&rest_engine.render_metrics()), counters(&grpc_engine.render_metrics()));
        let rest = ask_rest(&app, call, text, truncate).await;
        let grpc = ask_grpc(&channel, call, text, truncate).await;
        assert_eq!(
            (rest.class, rest.tokens, rest.values.len()),
            (grpc.class, grpc.tokens, grpc.values.len()),
            "{what}"
        );
        let error = rest.values.iter().zip(&grpc.values).map(|(r, g)| (r - g).abs()).fold(0.0f32, f32::max);
        assert!(error <= 1e-5, "{what}: values differ by {error}");
        let rest_delta = delta(&before.0, &counters(&rest_engine.render_metrics()));
        let grpc_delta = delta(&before.1, &counters(&grpc_engine.render_metrics()));
        assert_eq!(rest_delta, grpc_delta, "{what}: metric increments");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teis_sparse_token_and_predict_calls_agree_between_rest_and_grpc() {
    let long = "the quick brown fox ".repeat(30);
    let sentence = "A man is eating food.";
    compare(
        "bert-splade",
        &[
            (Call::Sparse, sentence, false),
            (Call::Sparse, &long, false),
            (Call::Sparse, &long, true),
            (Call::All, sentence, false),
            (Call::Predict, sentence, false),
        ],
    )
    .await;
    compare("xlm-roberta", &[(Call::All, sentence, false), (Call::All, &long, true), (Call::Sparse, sentence, false)])
        .await;
    compare(
        "xlm-roberta-classifier",
        &[(Call::Predict, sentence, false), (Call::Predict, &long, false), (Call::All, sentence, false)],
    )
    .await;
}
