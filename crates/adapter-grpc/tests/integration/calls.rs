//! Every method, the status mapping of bad input, auth, and a 1,000-request stream.

use aki_core::vector::cosine;
use aki_grpc::pb;
use aki_service::ApiKey;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;

use crate::support::{config, health_client, reference, start};

fn request(texts: &[&str]) -> pb::EmbedRequest {
    pb::EmbedRequest { texts: texts.iter().map(|t| (*t).to_string()).collect(), ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embed_info_tokenize_and_health() {
    let server = start(config()).await;
    let mut client = server.client().await;
    let (text, want, tokens) = reference(0);
    let reply = client
        .embed(pb::EmbedRequest { texts: vec![text.clone()], ..Default::default() })
        .await
        .expect("embed")
        .into_inner();
    assert!(cosine(&reply.embeddings[0].values, &want) >= 0.9999);
    assert_eq!(reply.usage.expect("usage").prompt_tokens as usize, tokens);
    assert_eq!(reply.model, config().model);
    let short = client
        .embed(pb::EmbedRequest { texts: vec![text], dimensions: Some(16), ..Default::default() })
        .await
        .expect("embed")
        .into_inner();
    assert_eq!(short.embeddings[0].values.len(), 16);

    let info = client.info(pb::InfoRequest {}).await.expect("info").into_inner();
    assert_eq!((info.dimension, info.max_input_tokens, info.device.as_str()), (384, 256, "cpu"));
    let tokens = client
        .tokenize(pb::TokenizeRequest { texts: vec!["Hello world".into()], add_special_tokens: Some(true) })
        .await
        .expect("tokenize")
        .into_inner();
    let ids: Vec<u32> = tokens.texts[0].tokens.iter().map(|t| t.id).collect();
    assert_eq!(ids, vec![101, 7592, 2088, 102]);

    let mut health = health_client(server.address).await.expect("health");
    let named = HealthCheckRequest { service: "aki.embed.v1.Embedder".into() };
    assert_eq!(health.check(named).await.expect("check").into_inner().status, 1, "SERVING");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_maps_to_grpc_status_codes() {
    let mut limited = config();
    limited.limits.max_inputs = 2;
    let server = start(limited).await;
    let mut client = server.client().await;
    let code = |r: Result<tonic::Response<pb::EmbedResponse>, tonic::Status>| r.expect_err("must fail").code();
    assert_eq!(code(client.embed(request(&[])).await), Code::InvalidArgument, "empty texts");
    assert_eq!(code(client.embed(request(&["a", "b", "c"])).await), Code::InvalidArgument, "too many");
    let bad_dims = pb::EmbedRequest { dimensions: Some(0), ..request(&["a"]) };
    assert_eq!(code(client.embed(bad_dims).await), Code::InvalidArgument, "dimensions 0");
    let too_many_dims = pb::EmbedRequest { dimensions: Some(1000), ..request(&["a"]) };
    assert_eq!(code(client.embed(too_many_dims).await), Code::InvalidArgument, "dimensions > 384");
    let long = "word ".repeat(300);
    let strict = pb::EmbedRequest { truncate: Some(false), ..request(&[long.as_str()]) };
    assert_eq!(code(client.embed(strict).await), Code::InvalidArgument, "too long without truncation");
    let other = pb::EmbedRequest { model: Some("/etc".into()), ..request(&["a"]) };
    assert_eq!(code(client.embed(other).await), Code::NotFound, "model not served");
    server.stop().await;

    let mut tiny_queue = config();
    tiny_queue.batching.queue_capacity = 1;
    let server = start(tiny_queue).await;
    let mut client = server.client().await;
    assert_eq!(code(client.embed(request(&["a", "b"])).await), Code::ResourceExhausted, "queue full");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_key_is_required_in_metadata() {
    let mut keyed = config();
    keyed.api_key = Some(ApiKey("k3y".into()));
    let server = start(keyed).await;
    let mut client = server.client().await;
    let denied = client.embed(request(&["a"])).await.expect_err("no key");
    assert_eq!(denied.code(), Code::Unauthenticated);
    let mut with_key = tonic::Request::new(request(&["a"]));
    with_key.metadata_mut().insert("authorization", "Bearer k3y".parse().expect("ascii"));
    client.embed(with_key).await.expect("authorised");
    // Health stays open.
    let mut health = health_client(server.address).await.expect("health");
    health.check(HealthCheckRequest { service: String::new() }).await.expect("open");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_deadline_is_honoured() {
    let server = start(config()).await;
    let mut client = server.client().await;
    let texts: Vec<String> =
        (0..256).map(|i| format!("sentence {i} that takes the model some time to embed")).collect();
    let mut hurried = tonic::Request::new(pb::EmbedRequest { texts, ..Default::default() });
    // The header a client's deadline travels in; set by hand so the server, not the client's
    // own timer, decides.
    hurried.metadata_mut().insert("grpc-timeout", "5m".parse().expect("ascii"));
    let started = std::time::Instant::now();
    let err = client.embed(hurried).await.expect_err("deadline");
    // Whichever notices first answers: the service (DEADLINE_EXCEEDED) or tonic's own
    // enforcement of the header (CANCELLED, "Timeout expired"); both drop the work.
    let expired =
        err.code() == Code::DeadlineExceeded || (err.code() == Code::Cancelled && err.message().contains("Timeout"));
    assert!(expired, "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(1), "answered at the deadline, not after the work");
    client.embed(request(&["still serving"])).await.expect("later calls work");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_requests_on_one_stream_are_all_answered_in_order() {
    let server = start(config()).await;
    let mut client = server.client().await;
    // Request i asks for i % 7 + 1 dimensions, so each answer shows which request it belongs to.
    let requests: Vec<pb::EmbedRequest> = (0..1000u32)
        .map(|i| pb::EmbedRequest {
            texts: vec![format!("stream item {}", i % 50)],
            dimensions: Some(i % 7 + 1),
            ..Default::default()
        })
        .collect();
    let mut answers = client.embed_stream(tokio_stream::iter(requests)).await.expect("stream").into_inner();
    let mut count = 0u32;
    while let Some(answer) = answers.message().await.expect("answer") {
        assert_eq!(answer.embeddings.len(), 1);
        assert_eq!(answer.embeddings[0].values.len() as u32, count % 7 + 1, "answer {count} out of order");
        count += 1;
    }
    assert_eq!(count, 1000);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_message_in_a_stream_is_answered_in_its_place_and_the_stream_goes_on() {
    let mut limited = config();
    limited.limits.max_inputs = 2;
    let server = start(limited).await;
    let mut client = server.client().await;
    let good = |i: u32| pb::EmbedRequest {
        texts: vec![format!("stream item {i}")],
        dimensions: Some(i + 1),
        ..Default::default()
    };
    let requests = vec![
        good(0),
        pb::EmbedRequest { texts: vec![], ..Default::default() },
        good(1),
        pb::EmbedRequest { texts: vec!["a".into(); 3], ..Default::default() },
        pb::EmbedRequest { model: Some("not/served".into()), ..good(9) },
        pb::EmbedRequest { token_ids: vec![pb::TokenIds { ids: vec![101, 999_999, 102] }], ..Default::default() },
        good(2),
    ];
    let mut answers = client.embed_stream(tokio_stream::iter(requests)).await.expect("stream").into_inner();
    let mut seen = Vec::new();
    while let Some(answer) = answers.message().await.expect("the stream is not ended by a bad message") {
        seen.push(match answer.error {
            Some(error) => Err(tonic::Code::from_i32(error.code)),
            None => Ok(answer.embeddings[0].values.len()),
        });
    }
    let invalid = Err(Code::InvalidArgument);
    assert_eq!(seen, vec![Ok(1), invalid, Ok(2), invalid, Err(Code::NotFound), invalid, Ok(3)]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_messages_honour_the_calls_deadline() {
    let server = start(config()).await;
    let mut client = server.client().await;
    let heavy: Vec<String> =
        (0..256).map(|i| format!("sentence {i} that takes the model some time to embed")).collect();
    let requests = vec![pb::EmbedRequest { texts: heavy, ..Default::default() }];
    let mut call = tonic::Request::new(tokio_stream::iter(requests));
    call.metadata_mut().insert("grpc-timeout", "20m".parse().expect("ascii"));
    let started = std::time::Instant::now();
    // Either the message is answered with DEADLINE_EXCEEDED in its place, or tonic ends the
    // call at the deadline; both within a fraction of the time the work would take.
    match client.embed_stream(call).await {
        Ok(answers) => {
            let mut answers = answers.into_inner();
            match answers.message().await {
                Ok(Some(answer)) => {
                    assert_eq!(answer.error.map(|e| tonic::Code::from_i32(e.code)), Some(Code::DeadlineExceeded));
                }
                Ok(None) => panic!("no answer"),
                Err(status) => assert!(matches!(status.code(), Code::Cancelled | Code::DeadlineExceeded), "{status}"),
            }
        }
        Err(status) => assert!(matches!(status.code(), Code::Cancelled | Code::DeadlineExceeded), "{status}"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(1), "answered at the deadline, not after the work");
    server.stop().await;
}

/// The service names reflection lists, asked in protocol `$v` (`v1` or `v1alpha`).
macro_rules! reflected_services {
    ($v:ident, $address:expr) => {{
        use tonic_reflection::pb::$v::ServerReflectionRequest;
        use tonic_reflection::pb::$v::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::$v::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::$v::server_reflection_response::MessageResponse;

        let channel = tonic::transport::Channel::from_shared(format!("http://{}", $address)).expect("uri");
        let mut client = ServerReflectionClient::new(channel.connect().await.expect("connect"));
        let ask = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut answers =
            client.server_reflection_info(tokio_stream::iter(vec![ask])).await.expect("reflection").into_inner();
        let answer = answers.message().await.expect("answer").expect("one answer");
        let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
            panic!("not a service list")
        };
        list.service.into_iter().map(|s| s.name).collect::<Vec<String>>()
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_services_in_v1_and_v1alpha() {
    let server = start(config()).await;
    for names in [reflected_services!(v1, server.address), reflected_services!(v1alpha, server.address)] {
        for wanted in ["aki.embed.v1.Embedder", "grpc.health.v1.Health"] {
            assert!(names.iter().any(|n| n == wanted), "{wanted} missing from {names:?}");
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedding_types_add_the_quantized_forms_of_the_floats() {
    let mut config = config();
    config.backend.dtype = Some("f32".into());
    let server = start(config).await;
    let mut client = server.client().await;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../backend-candle/tests/fixtures/quantized.json");
    let want: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
    let texts: Vec<String> = (0..4).map(|i| reference(i).0).collect();
    let types =
        [pb::EmbeddingType::Int8, pb::EmbeddingType::Uint8, pb::EmbeddingType::Binary, pb::EmbeddingType::Ubinary];
    let request =
        pb::EmbedRequest { texts, embedding_types: types.iter().map(|t| *t as i32).collect(), ..Default::default() };
    let reply = client.embed(request).await.expect("embed").into_inner();
    for (i, e) in reply.embeddings.iter().enumerate() {
        assert!(cosine(&e.values, &reference(i).1) >= 0.9999, "the floats are always there");
        let column = |kind: &str| -> Vec<i64> {
            want[kind][i].as_array().expect("bytes").iter().map(|x| x.as_i64().expect("integer")).collect()
        };
        let signed = |bytes: &[u8]| bytes.iter().map(|b| i64::from(*b as i8)).collect::<Vec<_>>();
        let unsigned = |bytes: &[u8]| bytes.iter().map(|b| i64::from(*b)).collect::<Vec<_>>();
        assert_eq!(signed(&e.binary), column("binary"), "binary {i}");
        assert_eq!(unsigned(&e.ubinary), column("ubinary"), "ubinary {i}");
        for (kind, got) in [("int8", signed(&e.int8)), ("uint8", unsigned(&e.uint8))] {
            let worst = got.iter().zip(column(kind)).map(|(g, w)| (g - w).abs()).max().unwrap_or(i64::MAX);
            assert!(got.len() == 384 && worst <= 1, "{kind} {i}: {worst} steps off");
        }
    }
    let plain = client.embed(pb::EmbedRequest { texts: vec!["a".into()], ..Default::default() }).await.expect("embed");
    assert!(plain.into_inner().embeddings[0].int8.is_empty(), "only when asked");
    server.stop().await;
}
