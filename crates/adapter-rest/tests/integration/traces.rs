//! Trace export of the real binary: with `OTEL_EXPORTER_OTLP_ENDPOINT` and the `grpc`
//! protocol, one REST request's trace reaches an OTLP collector service (opentelemetry-proto's
//! `TraceService`, run here): the request's span continues the caller's `traceparent`, and its
//! tokenization, queue wait and inference are child spans, with the model call under the
//! inference.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::trace::v1::Span;

use crate::shutdown::{request_with, start, terminate, wait_exit};

/// What the collector received: the resource's service name and the spans.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<(String, Span)>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref())
                .map(|v| format!("{:?}", v.value))
                .unwrap_or_default();
            for scope in resource.scope_spans {
                spans.extend(scope.spans.into_iter().map(|span| (service.clone(), span)));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER: &str = "00f067aa0ba902b7";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_reaches_an_otlp_collector_with_its_tokenize_queue_and_inference_spans() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let (mut server, port) = tokio::task::spawn_blocking(move || {
        let endpoint = format!("http://{address}");
        start(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ])
    })
    .await
    .expect("start");
    let reply = tokio::task::spawn_blocking(move || {
        let traceparent = format!("traceparent: 00-{TRACE}-{CALLER}-01\r\n");
        request_with(port, "POST", "/embed", r#"{"inputs": "a traced request"}"#, &traceparent)
    })
    .await
    .expect("client")
    .expect("answered");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    let wanted = ["POST /embed", "tokenize", "queue", "inference", "batch"];
    let until = Instant::now() + Duration::from_secs(20);
    let spans = loop {
        let spans: Vec<(String, Span)> = {
            let all = collector.0.lock().unwrap_or_else(PoisonError::into_inner);
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
    let request = named("POST /embed");
    assert_eq!(hex(&request.parent_span_id), CALLER, "the request continues the caller's span");
    assert!(spans.iter().all(|(service, _)| service.contains("aki-rest")), "service name: {:?}", spans[0].0);
    for child in ["tokenize", "queue", "inference"] {
        assert_eq!(named(child).parent_span_id, request.span_id, "`{child}` is a child of the request");
    }
    let inference = named("inference");
    assert_eq!(named("batch").parent_span_id, inference.span_id, "the model call runs under the inference span");
    let (tokenize, queue) = (named("tokenize"), named("queue"));
    assert!(tokenize.end_time_unix_nano <= queue.start_time_unix_nano, "tokenized before it queued");
    assert!(queue.end_time_unix_nano <= inference.start_time_unix_nano, "queued before it ran");
    assert!(request.start_time_unix_nano <= tokenize.start_time_unix_nano, "the request came first");

    tokio::task::spawn_blocking(move || {
        terminate(&server);
        assert!(wait_exit(&mut server, Duration::from_secs(30)).success());
    })
    .await
    .expect("stopped");
}
