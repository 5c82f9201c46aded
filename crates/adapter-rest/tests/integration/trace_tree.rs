//! What the trace export tests of both servers share (`aki-grpc`'s tests include this file):
//! the spans an OTLP collector received, waiting for one trace's spans, and finding them by name.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;

/// The OpenTelemetry variables that steer trace export: a server a test starts gets each empty
/// (which the SDK and the servers read as unset) unless the test sets it.
pub const OTEL_VARIABLES: [&str; 8] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
];

/// Every span a collector received so far, with its resource's `service.name`.
#[derive(Clone, Default)]
pub struct Received(Arc<Mutex<Vec<(String, Span)>>>);

impl Received {
    /// Keeps the spans of one export request.
    pub fn add(&self, request: ExportTraceServiceRequest) {
        let mut spans = self.0.lock().unwrap_or_else(PoisonError::into_inner);
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

    /// The spans of trace `trace` (hex), once one of each name in `names` has arrived (within
    /// 20 s).
    pub async fn trace(&self, trace: &str, names: &[&str]) -> Trace {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let spans: Vec<(String, Span)> = {
                let all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
                all.iter().filter(|(_, s)| hex(&s.trace_id) == trace).cloned().collect()
            };
            if names.iter().all(|name| spans.iter().any(|(_, s)| s.name == *name)) {
                return Trace(spans);
            }
            let arrived: Vec<&String> = spans.iter().map(|(_, s)| &s.name).collect();
            assert!(Instant::now() < until, "spans of the trace so far: {arrived:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// One trace's spans, with their service names.
pub struct Trace(pub Vec<(String, Span)>);

impl Trace {
    /// The one span named `name`.
    pub fn named(&self, name: &str) -> &Span {
        let found: Vec<&Span> = self.0.iter().map(|(_, s)| s).filter(|s| s.name == name).collect();
        assert_eq!(found.len(), 1, "one `{name}` span");
        found[0]
    }

    /// Checks the shape both servers give a request: `request` continues the caller's span
    /// `caller` (hex); `tokenize`, `queue` and `inference` are its children, in that order in
    /// time; the model call's `batch` runs under the `inference`; every span is `service`'s.
    pub fn check_request_shape(&self, request: &str, caller: &str, service: &str) {
        let top = self.named(request);
        assert_eq!(hex(&top.parent_span_id), caller, "the request continues the caller's span");
        assert!(self.0.iter().all(|(named, _)| named.contains(service)), "service name: {:?}", self.0[0].0);
        for child in ["tokenize", "queue", "inference"] {
            assert_eq!(self.named(child).parent_span_id, top.span_id, "`{child}` is a child of the request");
        }
        let (tokenize, queue, inference) = (self.named("tokenize"), self.named("queue"), self.named("inference"));
        assert_eq!(self.named("batch").parent_span_id, inference.span_id, "the model call runs under the inference");
        assert!(top.start_time_unix_nano <= tokenize.start_time_unix_nano, "the request came first");
        assert!(tokenize.end_time_unix_nano <= queue.start_time_unix_nano, "tokenized before it queued");
        assert!(queue.end_time_unix_nano <= inference.start_time_unix_nano, "queued before it ran");
    }
}

/// Bytes as lower-case hex, as trace and span ids are written.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
