//! Trace export of the real binary over OTLP/HTTP (the default protocol, protobuf bodies at
//! `/v1/traces` of `OTEL_EXPORTER_OTLP_ENDPOINT`), received by an HTTP collector run here: one
//! gRPC call's span continues the caller's `traceparent` metadata, its tokenization, queue wait
//! and inference are child spans, and the model call runs under the inference.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aki_grpc::pb;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use crate::support::{config, health_client};

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER: &str = "b7ad6b7169203331";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every span posted to `/v1/traces` so far, with its resource's service name.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

async fn collect(axum::extract::State(received): axum::extract::State<Received>, body: axum::body::Bytes) {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
    let mut spans = received.lock().unwrap_or_else(PoisonError::into_inner);
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .map(|a| format!("{:?}", a.value))
            .unwrap_or_default();
        spans.extend(resource.scope_spans.into_iter().flat_map(|s| s.spans).map(|span| (service.clone(), span)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_call_reaches_an_otlp_http_collector_with_its_tokenize_queue_and_inference_spans() {
    let received = Received::default();
    let collector = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", collector.local_addr().expect("address"));
    let app = axum::Router::new().route("/v1/traces", axum::routing::post(collect)).with_state(Arc::clone(&received));
    tokio::spawn(async move { axum::serve(collector, app).await });

    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_aki-grpc"))
        .args(["--port", &port.to_string(), "--metrics-port", "0", "--device", "cpu", "--model", &config().model])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_SERVICE_NAME", "embeddings-grpc")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aki-grpc");
    let address: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(server.try_wait().expect("poll").is_none(), "the server exited during start-up");
        let ask = tonic_health::pb::HealthCheckRequest { service: String::new() };
        if let Ok(mut health) = health_client(address).await
            && health.check(ask).await.is_ok_and(|r| r.into_inner().status == 1)
        {
            break;
        }
        assert!(Instant::now() < until, "never SERVING");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut client = pb::embedder_client::EmbedderClient::connect(format!("http://{address}")).await.expect("connect");
    let mut call = tonic::Request::new(pb::EmbedRequest { texts: vec!["a traced call".into()], ..Default::default() });
    call.metadata_mut().insert("traceparent", format!("00-{TRACE}-{CALLER}-01").parse().expect("metadata"));
    client.embed(call).await.expect("embedded");

    let method = "aki.embed.v1.Embedder/Embed";
    let wanted = [method, "tokenize", "queue", "inference", "batch"];
    let until = Instant::now() + Duration::from_secs(20);
    let spans = loop {
        let spans: Vec<(String, Span)> = {
            let all = received.lock().unwrap_or_else(PoisonError::into_inner);
            all.iter().filter(|(_, s)| hex(&s.trace_id) == TRACE).cloned().collect()
        };
        if wanted.iter().all(|name| spans.iter().any(|(_, s)| s.name == *name)) {
            break spans;
        }
        assert!(
            Instant::now() < until,
            "spans of the trace so far: {:?}",
            spans.iter().map(|(_, s)| &s.name).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let named = |name: &str| {
        let found: Vec<&Span> = spans.iter().map(|(_, s)| s).filter(|s| s.name == name).collect();
        assert_eq!(found.len(), 1, "one `{name}` span");
        found[0]
    };
    let request = named(method);
    assert_eq!(hex(&request.parent_span_id), CALLER, "the call continues the caller's span");
    assert!(spans.iter().all(|(service, _)| service.contains("embeddings-grpc")), "OTEL_SERVICE_NAME: {}", spans[0].0);
    for child in ["tokenize", "queue", "inference"] {
        assert_eq!(named(child).parent_span_id, request.span_id, "`{child}` is a child of the call");
    }
    assert_eq!(named("batch").parent_span_id, named("inference").span_id, "the model call runs under the inference");

    let killed = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().expect("kill");
    assert!(killed.success());
    let until = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = server.try_wait().expect("poll") {
            break exit;
        }
        assert!(Instant::now() < until, "did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "exit status {exit}");
}
