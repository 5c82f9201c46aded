//! `tei.v1` on the model kinds beyond embedders and rerankers, on the tiny models of
//! `aki-backend-candle`'s tests against their references: `EmbedSparse` and its stream on the
//! SPLADE model, `EmbedAll` and its stream on an embedder, `Predict` on a classifier of three
//! labels, and `Info`'s model type for each.

use aki_core::vector::cosine;
use aki_grpc::tei_pb;
use serde_json::Value;
use tei_pb::embed_client::EmbedClient;
use tei_pb::info_client::InfoClient;
use tei_pb::predict_client::PredictClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::families::{floats, texts, tiny};
use crate::support::start;

async fn channel(address: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{address}")).expect("uri").connect().await.expect("connect")
}

fn assert_sparse(what: &str, got: &[tei_pb::SparseValue], want: &Value) {
    let want = want.as_array().expect("pairs");
    assert_eq!(got.len(), want.len(), "{what}: active entries");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(u64::from(g.index), w[0].as_u64().expect("index"), "{what}");
        assert!((f64::from(g.value) - w[1].as_f64().expect("value")).abs() <= 1e-4, "{what}: {} vs {}", g.value, w[1]);
    }
}

#[tokio::test]
async fn embed_sparse_and_its_stream_on_the_splade_model() {
    let (config, reference) = tiny("bert-splade");
    let server = start(config).await;
    let channel = channel(server.address).await;
    let mut embed = EmbedClient::new(channel.clone());
    let inputs = texts(&reference, 6);
    let request =
        |text: &String| tei_pb::EmbedSparseRequest { inputs: text.clone(), truncate: true, ..Default::default() };
    let one = embed.embed_sparse(request(&inputs[1])).await.expect("embed sparse");
    assert!(one.metadata().contains_key("x-lane"), "the timing metadata of aki.embed.v1");
    let one = one.into_inner();
    assert_sparse("EmbedSparse", &one.sparse_embeddings, &reference["sparse"][1]);
    assert!(one.metadata.expect("metadata").compute_tokens > 0);
    let mut answers = embed
        .embed_sparse_stream(tokio_stream::iter(inputs.iter().map(request).collect::<Vec<_>>()))
        .await
        .expect("stream")
        .into_inner();
    let mut index = 0;
    while let Some(answer) = answers.message().await.expect("answer") {
        assert_sparse(
            &format!("EmbedSparseStream answer {index}"),
            &answer.sparse_embeddings,
            &reference["sparse"][index],
        );
        index += 1;
    }
    assert_eq!(index, inputs.len());
    let all = embed.embed_all(tei_pb::EmbedAllRequest { inputs: "a".into(), ..Default::default() }).await;
    assert_eq!(all.expect_err("no token vectors of SPLADE").code(), Code::InvalidArgument);
    let info = InfoClient::new(channel).info(tei_pb::InfoRequest {}).await.expect("info").into_inner();
    assert_eq!(info.model_type(), tei_pb::ModelType::Embedding);
    server.stop().await;
}

#[tokio::test]
async fn embed_all_and_its_stream_give_every_tokens_vector() {
    let (config, reference) = tiny("xlm-roberta");
    let server = start(config).await;
    let mut embed = EmbedClient::new(channel(server.address).await);
    let want = reference["token_vectors"].as_array().expect("token vectors");
    let inputs = texts(&reference, want.len());
    let check = |what: &str, got: &tei_pb::EmbedAllResponse, want: &Value| {
        let want = want.as_array().expect("tokens");
        assert_eq!(got.token_embeddings.len(), want.len(), "{what}: one vector per token");
        for (g, w) in got.token_embeddings.iter().zip(want) {
            let c = cosine(&g.embeddings, &floats(w));
            assert!(c >= 0.9999, "{what}: cosine {c}");
        }
    };
    let request =
        |text: &String| tei_pb::EmbedAllRequest { inputs: text.clone(), truncate: true, ..Default::default() };
    let one = embed.embed_all(request(&inputs[0])).await.expect("embed all").into_inner();
    check("EmbedAll", &one, &want[0]);
    let mut answers = embed
        .embed_all_stream(tokio_stream::iter(inputs.iter().map(request).collect::<Vec<_>>()))
        .await
        .expect("stream")
        .into_inner();
    let mut index = 0;
    while let Some(answer) = answers.message().await.expect("answer") {
        check(&format!("EmbedAllStream answer {index}"), &answer, &want[index]);
        index += 1;
    }
    assert_eq!(index, inputs.len());
    server.stop().await;
}

#[tokio::test]
async fn predict_on_a_classifier_of_three_labels_gives_every_label() {
    let (config, reference) = tiny("xlm-roberta-classifier");
    let server = start(config).await;
    let channel = channel(server.address).await;
    let inputs = texts(&reference, 2);
    let logits = floats(&reference["logits"][1]);
    let sum: f32 = logits.iter().map(|l| l.exp()).sum();
    let labels: Vec<&str> =
        reference["labels"].as_array().expect("labels").iter().map(|l| l.as_str().expect("label")).collect();
    let mut predict = PredictClient::new(channel.clone());
    let request = tei_pb::PredictRequest { inputs: inputs[1].clone(), truncate: true, ..Default::default() };
    let answer = predict.predict(request).await.expect("predict").into_inner();
    assert_eq!(answer.predictions.len(), 3, "every label");
    for p in &answer.predictions {
        let i = labels.iter().position(|l| *l == p.label).expect("a label of id2label");
        assert!((p.score - logits[i].exp() / sum).abs() <= 1e-4, "{}: {} vs softmax", p.label, p.score);
    }
    let info = InfoClient::new(channel).info(tei_pb::InfoRequest {}).await.expect("info").into_inner();
    assert_eq!(info.model_type(), tei_pb::ModelType::Classifier);
    server.stop().await;
}
