//! Prometheus metrics of a server, all prefixed `aki_`, and the hooks that feed them: requests
//! (the service's observer), and per model the batcher and the result cache (observers labelled
//! with the model, handed to each model's stack as it loads).

use std::time::Duration;

use aki_batching::{BatchObserver, BatchShape};
use aki_cache::CacheObserver;
use aki_core::{Lane, StoreStats};
use aki_service::{Finished, RequestObserver};

use crate::connections::{Closed, ConnectionObserver};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// The server's metrics registry.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_duration: HistogramVec,
    queue_depth: IntGaugeVec,
    queue_time: HistogramVec,
    wasted_tokens: IntCounterVec,
    batch_size: HistogramVec,
    batch_tokens: HistogramVec,
    inference: HistogramVec,
    real_tokens: IntCounterVec,
    padded_tokens: IntCounterVec,
    tokens: IntCounterVec,
    cache_hits: IntCounterVec,
    cache_misses: IntCounterVec,
    models_loaded: IntGauge,
    in_flight: IntGauge,
    connections_open: IntGauge,
    connections_closed: IntCounterVec,
}

const SECONDS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

fn histograms(name: &str, help: &str, buckets: Vec<f64>, label: &str) -> HistogramVec {
    HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), &[label]).expect("valid histogram")
}

fn counters(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter")
}

impl Metrics {
    /// A registry with every metric registered.
    ///
    /// # Panics
    /// Never in practice: names and buckets are constants that are valid.
    pub fn new() -> Self {
        let metrics = Self {
            registry: Registry::new(),
            requests: counters(
                "aki_requests_total",
                "Requests by route, outcome and tenant",
                &["route", "outcome", "tenant"],
            ),
            request_duration: histograms(
                "aki_request_duration_seconds",
                "Request latency by route",
                SECONDS.to_vec(),
                "route",
            ),
            queue_depth: IntGaugeVec::new(
                Opts::new("aki_queue_depth", "Items waiting in the batch queue, by lane"),
                &["model", "lane"],
            )
            .expect("valid gauge"),
            queue_time: histograms(
                "aki_queue_time_seconds",
                "Time answered requests waited in the batch queue (their longest-waiting input), by lane",
                SECONDS.to_vec(),
                "lane",
            ),
            wasted_tokens: counters(
                "aki_wasted_tokens_total",
                "Tokens computed for requests that never received them (failed, timed out or gone)",
                &["model"],
            ),
            batch_size: histograms(
                "aki_batch_size",
                "Items per model call",
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0],
                "model",
            ),
            batch_tokens: histograms(
                "aki_batch_tokens",
                "Tokens (budgeted cost) per model call",
                prometheus::exponential_buckets(16.0, 2.0, 14).expect("valid buckets"),
                "model",
            ),
            inference: histograms(
                "aki_inference_duration_seconds",
                "Duration of each model call",
                SECONDS.to_vec(),
                "model",
            ),
            real_tokens: counters("aki_batch_real_tokens_total", "Tokens of the inputs of model calls", &["model"]),
            padded_tokens: counters(
                "aki_batch_padded_tokens_total",
                "Tokens model calls computed, padding included (equal to the real tokens on unpadded backends)",
                &["model"],
            ),
            tokens: counters("aki_tokens_total", "Tokens processed, by tenant", &["tenant"]),
            cache_hits: counters("aki_cache_hits_total", "Inputs answered by the result cache", &["model"]),
            cache_misses: counters("aki_cache_misses_total", "Inputs the result cache missed", &["model"]),
            models_loaded: IntGauge::new("aki_models_loaded", "Models loaded in the store").expect("valid gauge"),
            in_flight: IntGauge::new("aki_requests_in_flight", "Requests being worked on").expect("valid gauge"),
            connections_open: IntGauge::new("aki_connections_open", "Client connections held").expect("valid gauge"),
            connections_closed: counters(
                "aki_connections_closed_total",
                "Connections the server refused or closed by its bounds, by reason",
                &["reason"],
            ),
        };
        for metric in [
            Box::new(metrics.requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(metrics.request_duration.clone()),
            Box::new(metrics.queue_depth.clone()),
            Box::new(metrics.queue_time.clone()),
            Box::new(metrics.wasted_tokens.clone()),
            Box::new(metrics.batch_size.clone()),
            Box::new(metrics.batch_tokens.clone()),
            Box::new(metrics.inference.clone()),
            Box::new(metrics.real_tokens.clone()),
            Box::new(metrics.padded_tokens.clone()),
            Box::new(metrics.tokens.clone()),
            Box::new(metrics.cache_hits.clone()),
            Box::new(metrics.cache_misses.clone()),
            Box::new(metrics.models_loaded.clone()),
            Box::new(metrics.in_flight.clone()),
            Box::new(metrics.connections_open.clone()),
            Box::new(metrics.connections_closed.clone()),
        ] {
            metrics.registry.register(metric).expect("unique metric names");
        }
        metrics
    }

    /// The hooks of one model's batcher and result cache, every metric labelled `model`.
    pub fn for_model(&self, model: &str) -> ModelMetrics {
        let label = [model];
        ModelMetrics {
            queue_depth: Lane::ALL.map(|lane| self.queue_depth.with_label_values(&[model, lane.as_str()])),
            wasted_tokens: self.wasted_tokens.with_label_values(&label),
            batch_size: self.batch_size.with_label_values(&label),
            batch_tokens: self.batch_tokens.with_label_values(&label),
            inference: self.inference.with_label_values(&label),
            real_tokens: self.real_tokens.with_label_values(&label),
            padded_tokens: self.padded_tokens.with_label_values(&label),
            cache_hits: self.cache_hits.with_label_values(&label),
            cache_misses: self.cache_misses.with_label_values(&label),
        }
    }

    /// Renders the Prometheus text format, refreshing the gauges read at scrape time: models
    /// loaded (from the store) and requests in flight (from the service).
    pub fn render(&self, store: &StoreStats, in_flight: usize) -> String {
        self.models_loaded.set(i64::try_from(store.models.len()).unwrap_or(i64::MAX));
        self.in_flight.set(i64::try_from(in_flight).unwrap_or(i64::MAX));
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestObserver for Metrics {
    fn finished(&self, request: &Finished<'_>) {
        self.requests.with_label_values(&[request.route, request.outcome.as_str(), request.tenant]).inc();
        self.request_duration.with_label_values(&[request.route]).observe(request.elapsed.as_secs_f64());
        if request.tokens > 0 {
            self.tokens.with_label_values(&[request.tenant]).inc_by(request.tokens as u64);
        }
        if let Some((lane, waited)) = request.queued {
            self.queue_time.with_label_values(&[lane.as_str()]).observe(waited.as_secs_f64());
        }
    }
}

impl ConnectionObserver for Metrics {
    fn open(&self, count: usize) {
        self.connections_open.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    fn closed(&self, why: Closed) {
        self.connections_closed.with_label_values(&[why.as_str()]).inc();
    }
}

/// The metrics of one model, as its batcher and result cache report them.
pub struct ModelMetrics {
    queue_depth: [IntGauge; 2],
    wasted_tokens: IntCounter,
    batch_size: Histogram,
    batch_tokens: Histogram,
    inference: Histogram,
    real_tokens: IntCounter,
    padded_tokens: IntCounter,
    cache_hits: IntCounter,
    cache_misses: IntCounter,
}

impl BatchObserver for ModelMetrics {
    fn queue_depth(&self, lane: Lane, depth: usize) {
        self.queue_depth[lane.index()].set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    fn wasted(&self, tokens: usize) {
        self.wasted_tokens.inc_by(tokens as u64);
    }

    fn dispatched(&self, shape: &BatchShape) {
        self.batch_size.observe(shape.items as f64);
        self.batch_tokens.observe(shape.tokens as f64);
        self.real_tokens.inc_by(shape.real_tokens as u64);
        self.padded_tokens.inc_by(shape.tokens as u64);
    }

    fn completed(&self, inference: Duration, _ok: bool) {
        self.inference.observe(inference.as_secs_f64());
    }
}

impl CacheObserver for ModelMetrics {
    fn looked_up(&self, hits: usize, misses: usize) {
        self.cache_hits.inc_by(hits as u64);
        self.cache_misses.inc_by(misses as u64);
    }
}
