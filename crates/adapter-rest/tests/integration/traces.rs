//! Trace export of the real binary: with `OTEL_EXPORTER_OTLP_ENDPOINT` and the `grpc`
//! protocol, one REST request's trace reaches an OTLP collector service (opentelemetry-proto's
//! `TraceService`, run here): the request's span continues the caller's `traceparent`, and its
//! tokenization, queue wait and inference are child spans, with the model call under the
//! inference.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};

use crate::shutdown::{request_with, start, terminate, wait_exit};
use crate::trace_tree::Received;

/// The collector: keeps what it receives.
#[derive(Clone, Default)]
struct Collector(Received);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.add(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER: &str = "00f067aa0ba902b7";

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

    let request = "POST /embed";
    let trace = collector.0.trace(TRACE, &[request, "tokenize", "queue", "inference", "batch"]).await;
    // Without OTEL_SERVICE_NAME, the binary's name.
    trace.check_request_shape(request, CALLER, "aki-rest");

    tokio::task::spawn_blocking(move || {
        terminate(&server);
        assert!(wait_exit(&mut server, Duration::from_secs(30)).success());
    })
    .await
    .expect("stopped");
}
