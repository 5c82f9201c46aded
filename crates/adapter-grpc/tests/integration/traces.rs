//! Trace export of the real binary over OTLP/HTTP (the default protocol, protobuf bodies at
//! `/v1/traces` of `OTEL_EXPORTER_OTLP_ENDPOINT`), received by an HTTP collector run here: one
//! gRPC call's span continues the caller's `traceparent` metadata, its tokenization, queue wait
//! and inference are child spans, and the model call runs under the inference; the messages of
//! a stream are children of the stream's call.

use aki_grpc::pb;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::shutdown::{spawn_serving, terminate_and_wait};
use crate::trace_tree::Received;

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER: &str = "b7ad6b7169203331";
const STREAM_TRACE: &str = "5b8efff798038103d269b633813fc60c";

async fn collect(axum::extract::State(received): axum::extract::State<Received>, body: axum::body::Bytes) {
    received.add(ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_call_reaches_an_otlp_http_collector_with_its_tokenize_queue_and_inference_spans() {
    let received = Received::default();
    let collector = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", collector.local_addr().expect("address"));
    let app = axum::Router::new().route("/v1/traces", axum::routing::post(collect)).with_state(received.clone());
    tokio::spawn(async move { axum::serve(collector, app).await });
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_SERVICE_NAME", "embeddings-grpc"),
    ];
    let (mut server, address, _) = spawn_serving(&env).await;

    let mut client = pb::embedder_client::EmbedderClient::connect(format!("http://{address}")).await.expect("connect");
    let mut call = tonic::Request::new(pb::EmbedRequest { texts: vec!["a traced call".into()], ..Default::default() });
    call.metadata_mut().insert("traceparent", format!("00-{TRACE}-{CALLER}-01").parse().expect("metadata"));
    client.embed(call).await.expect("embedded");

    let method = "aki.embed.v1.Embedder/Embed";
    let trace = received.trace(TRACE, &[method, "tokenize", "queue", "inference", "batch"]).await;
    trace.check_request_shape(method, CALLER, "embeddings-grpc");

    // A stream's messages are answered after its call returned: their spans still belong to it.
    let messages =
        ["first message", "second message"].map(|t| pb::EmbedRequest { texts: vec![t.into()], ..Default::default() });
    let mut call = tonic::Request::new(tokio_stream::iter(messages));
    call.metadata_mut().insert("traceparent", format!("00-{STREAM_TRACE}-{CALLER}-01").parse().expect("metadata"));
    let answers: Vec<_> =
        tokio_stream::StreamExt::collect(client.embed_stream(call).await.expect("stream").into_inner()).await;
    assert!(answers.iter().all(Result::is_ok) && answers.len() == 2, "{answers:?}");
    let method = "aki.embed.v1.Embedder/EmbedStream";
    let stream = received.trace(STREAM_TRACE, &[method, "tokenize", "queue", "inference"]).await;
    let call = stream.named(method).span_id.clone();
    for child in ["tokenize", "queue", "inference"] {
        let under: Vec<_> = stream.0.iter().filter(|(_, s)| s.name == child && s.parent_span_id == call).collect();
        assert_eq!(under.len(), 2, "each message's `{child}` is a child of the stream's call");
    }
    assert!(terminate_and_wait(&mut server).await.success());
}
