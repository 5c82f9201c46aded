//! Prometheus metrics of a server, all prefixed `aki_`; also the batcher's observer.

use std::time::Duration;

use aki_batching::{BatchObserver, BatchShape};
use aki_core::StoreStats;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// The server's metrics registry.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_duration: HistogramVec,
    queue_depth: IntGauge,
    batch_size: Histogram,
    batch_tokens: Histogram,
    inference: Histogram,
    tokens: IntCounter,
    cache_hits: IntCounter,
    cache_misses: IntCounter,
    models_loaded: IntGauge,
}

fn histogram(name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("valid histogram")
}

const SECONDS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

impl Metrics {
    /// A registry with every metric registered.
    ///
    /// # Panics
    /// Never in practice: names and buckets are constants that are valid.
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests =
            IntCounterVec::new(Opts::new("aki_requests_total", "Requests by route and status"), &["route", "status"])
                .expect("valid counter");
        let request_duration = HistogramVec::new(
            HistogramOpts::new("aki_request_duration_seconds", "Request latency by route").buckets(SECONDS.to_vec()),
            &["route"],
        )
        .expect("valid histogram");
        let queue_depth = IntGauge::new("aki_queue_depth", "Items waiting in the batch queue").expect("valid gauge");
        let batch_size = histogram(
            "aki_batch_size",
            "Items per model call",
            vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0],
        );
        let batch_tokens = histogram(
            "aki_batch_tokens",
            "Tokens (budgeted cost) per model call",
            prometheus::exponential_buckets(16.0, 2.0, 14).expect("valid buckets"),
        );
        let inference = histogram("aki_inference_duration_seconds", "Duration of each model call", SECONDS.to_vec());
        let tokens = IntCounter::new("aki_tokens_total", "Tokens embedded").expect("valid counter");
        let cache_hits = IntCounter::new("aki_cache_hits_total", "Texts answered by the result cache").expect("valid");
        let cache_misses = IntCounter::new("aki_cache_misses_total", "Texts the result cache missed").expect("valid");
        let models_loaded = IntGauge::new("aki_models_loaded", "Models loaded in the store").expect("valid gauge");
        for metric in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(request_duration.clone()),
            Box::new(queue_depth.clone()),
            Box::new(batch_size.clone()),
            Box::new(batch_tokens.clone()),
            Box::new(inference.clone()),
            Box::new(tokens.clone()),
            Box::new(cache_hits.clone()),
            Box::new(cache_misses.clone()),
            Box::new(models_loaded.clone()),
        ] {
            registry.register(metric).expect("unique metric names");
        }
        Self {
            registry,
            requests,
            request_duration,
            queue_depth,
            batch_size,
            batch_tokens,
            inference,
            tokens,
            cache_hits,
            cache_misses,
            models_loaded,
        }
    }

    /// Records one finished request.
    pub fn request(&self, route: &str, status: u16, elapsed: Duration) {
        self.requests.with_label_values(&[route, &status.to_string()]).inc();
        self.request_duration.with_label_values(&[route]).observe(elapsed.as_secs_f64());
    }

    /// Counts embedded tokens.
    pub fn tokens(&self, n: usize) {
        self.tokens.inc_by(n as u64);
    }

    /// Renders the Prometheus text format, refreshing the gauges read from the store and the
    /// result cache first.
    pub fn render(&self, store: &StoreStats, cache: Option<(u64, u64)>) -> String {
        self.models_loaded.set(i64::try_from(store.models.len()).unwrap_or(i64::MAX));
        if let Some((hits, misses)) = cache {
            self.cache_hits.inc_by(hits.saturating_sub(self.cache_hits.get()));
            self.cache_misses.inc_by(misses.saturating_sub(self.cache_misses.get()));
        }
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

impl BatchObserver for Metrics {
    fn queue_depth(&self, depth: usize) {
        self.queue_depth.set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    fn dispatched(&self, shape: &BatchShape) {
        self.batch_size.observe(shape.items as f64);
        self.batch_tokens.observe(shape.tokens as f64);
    }

    fn completed(&self, inference: Duration, _ok: bool) {
        self.inference.observe(inference.as_secs_f64());
    }
}
