//! The caller's tracing span crosses the queue: each request gets `queue` and `inference`
//! child spans; what the batch function logs belongs to the request whose items it runs, or to
//! a `batch` span of its own, following from every caller's, when it runs several callers'
//! items.
//!
//! A test binary of its own: tracing caches whether a span is enabled per call site, for the
//! whole process, so tests on other threads without this subscriber would race with it.

#[allow(dead_code)]
#[path = "integration/fake.rs"]
mod fake;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aki_batching::BatchConfig;
use tracing::Instrument;
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use fake::{Fake, Item, batcher, submit};

/// Collects what the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Records the tree: each span's label (its name, and `#id` for a request) under its parent's,
/// and who follows from whom.
#[derive(Clone, Default)]
struct Shape(Arc<Mutex<ShapeState>>);

#[derive(Default)]
struct ShapeState {
    labels: HashMap<Id, String>,
    /// (span, its parent or "-").
    parents: Vec<(String, String)>,
    /// (span, the span it follows from).
    follows: Vec<(String, String)>,
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Shape {
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        struct RequestId(Option<u64>);
        impl tracing::field::Visit for RequestId {
            fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
                self.0 = (field.name() == "id").then_some(value).or(self.0);
            }
            fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
                self.record_u64(field, value.unsigned_abs());
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        let mut request = RequestId(None);
        attributes.record(&mut request);
        let name = attributes.metadata().name();
        let label = request.0.map_or_else(|| name.to_string(), |n| format!("{name}#{n}"));
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let parent = context.span_scope(id).and_then(|mut scope| scope.nth(1)).map(|p| p.id());
        let parent = parent.and_then(|p| state.labels.get(&p).cloned()).unwrap_or_else(|| "-".into());
        state.parents.push((label.clone(), parent));
        state.labels.insert(id.clone(), label);
    }

    fn on_follows_from(&self, span: &Id, follows: &Id, _: Context<'_, S>) {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let pair = (state.labels[span].clone(), state.labels[follows].clone());
        state.follows.push(pair);
    }
}

#[test]
fn requests_wait_and_run_in_child_spans_and_a_shared_batch_follows_from_each_caller() {
    let captured = Captured::default();
    let writer = captured.clone();
    let shape = Shape::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .finish()
        .with(shape.clone());
    tracing::subscriber::with_default(subscriber, || {
        // One thread: the default subscriber is the thread's, and every task runs on it.
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let fake = Fake::slow(Duration::from_millis(50));
            let b = batcher(BatchConfig::default(), &fake, false);
            // Alone: the batch runs in the caller's own span.
            let alone = submit(&b, vec![Item::new(0, 0, 1)], None).instrument(tracing::info_span!("request", id = 1));
            alone.await.expect("served");
            // Two callers queued behind a running batch share the next one: a `batch` span.
            let first = tokio::spawn({
                let b = b.clone();
                async move { submit(&b, vec![Item::new(1, 0, 1)], None).await }
                    .instrument(tracing::info_span!("request", id = 2))
            });
            tokio::time::sleep(Duration::from_millis(10)).await;
            let second = submit(&b, vec![Item::new(2, 0, 1)], None).instrument(tracing::info_span!("request", id = 3));
            let third = submit(&b, vec![Item::new(3, 0, 1)], None).instrument(tracing::info_span!("request", id = 4));
            let (b2, c) = tokio::join!(second, third);
            b2.and(c).expect("served");
            first.await.expect("task").expect("served");
        });
    });
    let logs = String::from_utf8(captured.0.lock().unwrap_or_else(PoisonError::into_inner).clone()).expect("utf-8");
    let lines: Vec<&str> = logs.lines().filter(|l| l.contains("fake batch runs")).collect();
    assert!(lines[0].contains("request{id=1}"), "the lone request's span: {logs}");
    assert!(lines[1].contains("request{id=2}"), "the first of three runs alone: {logs}");
    assert!(lines[2].contains("batch{items=2 callers=2}"), "the other two share a batch: {logs}");
    assert_eq!(lines.len(), 3, "{logs}");
    let state = shape.0.lock().unwrap_or_else(PoisonError::into_inner);
    let has = |span: &str, parent: &str| state.parents.iter().filter(|(s, p)| s == span && p == parent).count();
    for request in ["request#1", "request#2", "request#3", "request#4"] {
        assert_eq!(has("queue", request), 1, "{request} waited once: {:?}", state.parents);
        assert_eq!(has("inference", request), 1, "{request} ran in one call: {:?}", state.parents);
    }
    assert_eq!(has("batch", "inference"), 2, "lone calls sit under their request: {:?}", state.parents);
    assert_eq!(has("batch", "-"), 1, "the shared call is a trace of its own: {:?}", state.parents);
    let linked = [("batch".to_string(), "request#3".to_string()), ("batch".to_string(), "request#4".to_string())];
    assert_eq!(state.follows, linked, "the shared call follows from both its callers");
}
