//! TEI's `tei.v1` services with their own generated clients: on the real model (`Embed` and
//! its stream against the reference, `Info`, `Tokenize`, `Decode`, the API key, parity with
//! `aki.embed.v1`), and on the tiny cross-encoder (`Rerank`, `RerankStream`, `Predict`,
//! `PredictPair` and its stream against the sentence-transformers reference).

use aki_core::vector::cosine;
use aki_grpc::{pb, tei_pb};
use aki_service::ApiKey;
use tei_pb::embed_client::EmbedClient;
use tei_pb::info_client::InfoClient;
use tei_pb::predict_client::PredictClient;
use tei_pb::rerank_client::RerankClient;
use tei_pb::tokenize_client::TokenizeClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::families::{floats, tiny};
use crate::support::{config, reference, start};

async fn channel(address: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{address}")).expect("uri").connect().await.expect("connect")
}

#[tokio::test]
async fn embed_tokenize_decode_and_info_as_tei_clients_call_them() {
    let server = start(config()).await;
    let channel = channel(server.address).await;
    let mut embed = EmbedClient::new(channel.clone());
    let (text, want, tokens) = reference(4);
    let reply = embed.embed(tei_pb::EmbedRequest { inputs: text.clone(), ..Default::default() }).await.expect("embed");
    assert!(reply.metadata().contains_key("x-lane"), "the timing metadata of aki.embed.v1");
    let reply = reply.into_inner();
    assert!(cosine(&reply.embeddings, &want) >= 0.9999);
    let norm = reply.embeddings.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "normalised by default, as TEI");
    let metadata = reply.metadata.expect("metadata");
    assert_eq!((metadata.compute_tokens as usize, metadata.compute_chars as usize), (tokens, text.chars().count()));
    assert!(metadata.total_time_ns >= metadata.inference_time_ns && metadata.inference_time_ns > 0);

    // Same vector as aki.embed.v1.
    let mut aki = server.client().await;
    let ours = aki.embed(pb::EmbedRequest { texts: vec![text.clone()], ..Default::default() }).await.expect("embed");
    assert!(cosine(&ours.into_inner().embeddings[0].values, &reply.embeddings) > 0.999_999);

    let messages: Vec<tei_pb::EmbedRequest> = (0..6)
        .map(|i| tei_pb::EmbedRequest { inputs: reference(i).0, dimensions: Some(64), ..Default::default() })
        .collect();
    let mut answers = embed.embed_stream(tokio_stream::iter(messages)).await.expect("stream").into_inner();
    let mut count = 0;
    while let Some(answer) = answers.message().await.expect("answer") {
        assert_eq!(answer.embeddings.len(), 64);
        let head: Vec<f32> = reference(count).1[..64].to_vec();
        assert!(cosine(&answer.embeddings, &head) >= 0.9999, "answer {count} in order");
        count += 1;
    }
    assert_eq!(count, 6);
    // Not truncated by default, as TEI: an over-long input is refused, and cut when asked.
    let long = "word ".repeat(600);
    let refused = embed.embed(tei_pb::EmbedRequest { inputs: long.clone(), ..Default::default() }).await;
    assert_eq!(refused.expect_err("too long").code(), Code::InvalidArgument);
    let cut = embed.embed(tei_pb::EmbedRequest { inputs: long, truncate: true, ..Default::default() }).await;
    assert_eq!(cut.expect("truncated").into_inner().metadata.expect("metadata").compute_tokens, 256);
    let sparse = embed.embed_sparse(tei_pb::EmbedSparseRequest { inputs: "a".into(), ..Default::default() }).await;
    assert_eq!(sparse.expect_err("not a SPLADE model").code(), Code::InvalidArgument);

    let mut tokenize = TokenizeClient::new(channel.clone());
    let encoded = tokenize
        .tokenize(tei_pb::EncodeRequest { inputs: "Hello world".into(), add_special_tokens: true, prompt_name: None })
        .await
        .expect("tokenize")
        .into_inner();
    let ids: Vec<u32> = encoded.tokens.iter().map(|t| t.id).collect();
    assert_eq!(ids, [101, 7592, 2088, 102]);
    assert_eq!((encoded.tokens[0].start, encoded.tokens[1].start, encoded.tokens[1].stop), (None, Some(0), Some(5)));
    let decoded = tokenize
        .decode(tei_pb::DecodeRequest { ids: ids.clone(), skip_special_tokens: false })
        .await
        .expect("decode")
        .into_inner();
    assert_eq!(decoded.text, "[CLS] hello world [SEP]");
    let both = [true, false].map(|skip| tei_pb::DecodeRequest { ids: ids.clone(), skip_special_tokens: skip });
    let mut texts = tokenize.decode_stream(tokio_stream::iter(both)).await.expect("stream").into_inner();
    assert_eq!(texts.message().await.expect("first").expect("an answer").text, "hello world");
    assert_eq!(texts.message().await.expect("second").expect("an answer").text, "[CLS] hello world [SEP]");

    let info = InfoClient::new(channel).info(tei_pb::InfoRequest {}).await.expect("info").into_inner();
    assert_eq!(info.model_type(), tei_pb::ModelType::Embedding);
    assert_eq!((info.max_input_length, info.max_concurrent_requests, info.max_batch_requests), (256, 512, Some(32)));
    // The precision the server reports (its CPU's default: f32, f16 at AVX2, bf16 with AVX-512
    // BF16), named as PyTorch and TEI's clients name it.
    let ours = server.client().await.info(pb::InfoRequest {}).await.expect("info").into_inner();
    assert_eq!(info.model_dtype, torch_dtype(&ours.dtype));
    let predict = PredictClient::new(self::channel(server.address).await)
        .predict(tei_pb::PredictRequest { inputs: "a".into(), ..Default::default() })
        .await;
    assert_eq!(predict.expect_err("an embedder").code(), Code::InvalidArgument);
    server.stop().await;
}

#[tokio::test]
async fn tei_services_need_the_key_when_one_is_set() {
    let mut config = config();
    config.api_key = Some(ApiKey("secret".into()));
    let server = start(config).await;
    let mut embed = EmbedClient::new(channel(server.address).await);
    let bare = embed.embed(tei_pb::EmbedRequest { inputs: "a".into(), ..Default::default() }).await;
    assert_eq!(bare.expect_err("no key").code(), Code::Unauthenticated);
    let mut keyed = tonic::Request::new(tei_pb::EmbedRequest { inputs: "a".into(), ..Default::default() });
    keyed.metadata_mut().insert("authorization", "Bearer secret".parse().expect("metadata"));
    assert!(embed.embed(keyed).await.is_ok());
    server.stop().await;
}

#[tokio::test]
async fn rerank_and_predict_on_the_cross_encoder() {
    let (config, reference) = tiny("bert-reranker");
    let server = start(config).await;
    let channel = channel(server.address).await;
    let query = reference["query"].as_str().expect("query").to_string();
    let texts: Vec<String> = reference["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .take(6)
        .map(|t| t.as_str().expect("text").into())
        .collect();
    let (scores, raw) = (floats(&reference["scores"]), floats(&reference["raw_scores"]));

    let mut rerank = RerankClient::new(channel.clone());
    let request = tei_pb::RerankRequest {
        query: query.clone(),
        texts: texts.clone(),
        truncate: true,
        return_text: true,
        ..Default::default()
    };
    let ranked = rerank.rerank(request).await.expect("rerank").into_inner();
    assert_eq!(ranked.ranks.len(), 6);
    for pair in ranked.ranks.windows(2) {
        assert!(pair[0].score >= pair[1].score, "best first");
    }
    for rank in &ranked.ranks {
        let index = rank.index as usize;
        assert!((rank.score - scores[index]).abs() < 1e-4, "text {index}");
        assert_eq!(rank.text.as_deref(), Some(texts[index].as_str()));
    }
    let pairs: Vec<tei_pb::RerankStreamRequest> = texts
        .iter()
        .map(|text| tei_pb::RerankStreamRequest {
            query: query.clone(),
            text: text.clone(),
            truncate: true,
            raw_scores: true,
            ..Default::default()
        })
        .collect();
    let streamed = rerank.rerank_stream(tokio_stream::iter(pairs)).await.expect("rerank stream").into_inner();
    assert_eq!(streamed.ranks[0].index, ranked.ranks[0].index, "the same order as Rerank");
    for rank in &streamed.ranks {
        assert!((rank.score - raw[rank.index as usize]).abs() < 1e-4, "raw scores from the first message");
        assert!(rank.text.is_none(), "no text unless the first message asks");
    }

    let mut predict = PredictClient::new(channel.clone());
    let pair = tei_pb::PredictPairRequest {
        inputs: vec![query.clone(), texts[2].clone()],
        truncate: true,
        ..Default::default()
    };
    let labels = predict.predict_pair(pair).await.expect("predict pair").into_inner();
    assert_eq!(labels.predictions.len(), 1);
    assert_eq!(labels.predictions[0].label, "LABEL_0");
    assert!((labels.predictions[0].score - scores[2]).abs() < 1e-4);
    let three = tei_pb::PredictPairRequest { inputs: vec!["a".into(), "b".into(), "c".into()], ..Default::default() };
    assert_eq!(predict.predict_pair(three).await.expect_err("three texts").code(), Code::InvalidArgument);
    let stream: Vec<tei_pb::PredictPairRequest> = texts
        .iter()
        .map(|t| tei_pb::PredictPairRequest {
            inputs: vec![query.clone(), t.clone()],
            truncate: true,
            raw_scores: true,
            ..Default::default()
        })
        .collect();
    let mut answers = predict.predict_pair_stream(tokio_stream::iter(stream)).await.expect("stream").into_inner();
    let mut index = 0;
    while let Some(answer) = answers.message().await.expect("answer") {
        assert!((answer.predictions[0].score - raw[index]).abs() < 1e-4, "answer {index} in order");
        index += 1;
    }
    assert_eq!(index, 6);
    let single = predict
        .predict(tei_pb::PredictRequest { inputs: texts[0].clone(), truncate: true, ..Default::default() })
        .await
        .expect("predict one text")
        .into_inner();
    assert!(single.predictions[0].score > 0.0 && single.predictions[0].score < 1.0, "a sigmoid probability");

    let info = InfoClient::new(channel).info(tei_pb::InfoRequest {}).await.expect("info").into_inner();
    assert_eq!(info.model_type(), tei_pb::ModelType::Reranker);
    server.stop().await;
}

/// A precision as PyTorch and TEI name it.
fn torch_dtype(dtype: &str) -> &'static str {
    match dtype {
        "f32" => "float32",
        "f16" => "float16",
        "bf16" => "bfloat16",
        other => panic!("no default precision is {other}"),
    }
}
