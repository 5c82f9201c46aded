//! OpenTelemetry trace export: OTLP over gRPC or HTTP, on only when OpenTelemetry's own
//! environment variables name an endpoint, and the caller's W3C trace context read from a
//! request's headers so a request's span continues the caller's trace.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::registry::LookupSpan;

/// Set once export is on: only then are callers' trace headers read.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// The running exporter; [`shutdown`](Self::shutdown) sends the spans still buffered.
pub struct TraceExport {
    provider: SdkTracerProvider,
}

impl TraceExport {
    /// Exports what is still buffered and stops the exporter (blocking: call it off the
    /// runtime's worker threads).
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown() {
            eprintln!("trace export: {error}");
        }
    }
}

/// Whether `var` (an environment lookup) asks for trace export: an OTLP endpoint is set
/// (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`), the SDK is not
/// disabled (`OTEL_SDK_DISABLED=true`) and the traces exporter is not `none`
/// (`OTEL_TRACES_EXPORTER`).
pub(crate) fn wanted(var: impl Fn(&str) -> Option<String>) -> bool {
    let set = |name: &str| var(name).is_some_and(|v| !v.trim().is_empty());
    let endpoint = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") || set("OTEL_EXPORTER_OTLP_ENDPOINT");
    let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let none = var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"));
    endpoint && !disabled && !none
}

/// The protocol that applies (`OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else
/// `OTEL_EXPORTER_OTLP_PROTOCOL`) must be one this build speaks, as the SDK reads it: the SDK
/// would ignore another (`http/json`, a typo, a stray space) and send protobuf over HTTP
/// instead. The endpoints must be plain `http`: this build has no TLS, and would fail every
/// send to an `https` collector.
///
/// # Errors
/// Naming the variable and what it may take.
pub(crate) fn check_settings(var: impl Fn(&str) -> Option<String>) -> Result<()> {
    let set = |name: &'static str| var(name).filter(|v| !v.is_empty()).map(|v| (name, v));
    let protocol = set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| set("OTEL_EXPORTER_OTLP_PROTOCOL"));
    if let Some((name, value)) = protocol {
        anyhow::ensure!(
            matches!(value.to_ascii_lowercase().as_str(), "grpc" | "http/protobuf"),
            "{name}={value}: trace export speaks `grpc` or `http/protobuf`"
        );
    }
    for name in ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"] {
        if let Some((name, value)) = set(name) {
            anyhow::ensure!(
                !value.trim().to_ascii_lowercase().starts_with("https:"),
                "{name}={value}: trace export speaks plain `http` (run a collector or agent beside the server)"
            );
        }
    }
    Ok(())
}

/// The layer that turns this crate family's spans (targets `aki_*`, level INFO and above,
/// whatever `RUST_LOG` says) into OpenTelemetry spans sent by OTLP, when the environment asks
/// ([`wanted`]); the protocol, endpoint, headers, timeout and batching come from the
/// `OTEL_EXPORTER_OTLP_*` and `OTEL_BSP_*` variables, the service name from
/// `OTEL_SERVICE_NAME` (or `OTEL_RESOURCE_ATTRIBUTES`), else `service_name`. Must be called
/// inside the Tokio runtime (the gRPC exporter's connection runs on it).
///
/// # Errors
/// When the exporter cannot be built from the variables (an unknown protocol, a bad endpoint).
pub(crate) fn layer<S>(service_name: &str) -> Result<Option<(impl Layer<S> + use<S>, TraceExport)>>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    let var = |name: &str| std::env::var(name).ok();
    if !wanted(var) {
        return Ok(None);
    }
    check_settings(var)?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .build()
        .context("OpenTelemetry trace export (the OTEL_EXPORTER_OTLP_* variables)")?;
    let detected = Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::new("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    let resource =
        if named { detected } else { Resource::builder().with_service_name(service_name.to_string()).build() };
    let provider = SdkTracerProvider::builder().with_resource(resource).with_batch_exporter(exporter).build();
    let tracer = provider.tracer("aki-embed");
    let ours = filter_fn(|metadata| metadata.target().starts_with("aki_") && *metadata.level() <= tracing::Level::INFO);
    let layer = tracing_opentelemetry::layer().with_tracer(tracer).with_filter(ours);
    EXPORTING.store(true, Ordering::Relaxed);
    Ok(Some((layer, TraceExport { provider })))
}

/// Makes `span` (a request's, not yet entered) continue the trace of the caller's
/// `traceparent` (and `tracestate`) header, when export is on and the header is valid.
pub fn continue_caller_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    if !EXPORTING.load(Ordering::Relaxed) || !headers.contains_key("traceparent") {
        return;
    }
    let caller = TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers));
    let _ = span.set_parent(caller);
}

#[cfg(test)]
mod tests {
    use super::{check_settings, wanted};

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_string())
    }

    #[test]
    fn export_is_on_only_when_an_endpoint_is_named_and_nothing_turns_it_off() {
        assert!(!wanted(env(&[])));
        assert!(!wanted(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])));
        assert!(wanted(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")])));
        assert!(wanted(env(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/v1/traces")])));
        let on = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317");
        assert!(!wanted(env(&[on, ("OTEL_SDK_DISABLED", "TRUE")])));
        assert!(!wanted(env(&[on, ("OTEL_TRACES_EXPORTER", "none")])));
        assert!(wanted(env(&[on, ("OTEL_SDK_DISABLED", "false"), ("OTEL_TRACES_EXPORTER", "otlp")])));
    }

    #[test]
    fn a_protocol_or_scheme_this_build_does_not_speak_is_refused_naming_the_variable() {
        assert!(check_settings(env(&[])).is_ok());
        assert!(check_settings(env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])).is_ok());
        assert!(check_settings(env(&[("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "HTTP/protobuf")])).is_ok());
        let json = check_settings(env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")])).expect_err("refused");
        assert!(json.to_string().starts_with("OTEL_EXPORTER_OTLP_PROTOCOL=http/json:"), "{json}");
        let spaced = check_settings(env(&[("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc ")])).expect_err("refused");
        assert!(spaced.to_string().contains("`grpc` or `http/protobuf`"), "{spaced}");
        // The traces variable wins, so the generic one does not matter then.
        let both = [("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")];
        assert!(check_settings(env(&both)).is_ok());
        let tls =
            check_settings(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318")])).expect_err("refused");
        assert!(tls.to_string().contains("plain `http`"), "{tls}");
        assert!(check_settings(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")])).is_ok());
    }
}
