//! The caller's tracing span crosses the queue: what the batch function logs belongs to the
//! request whose items it runs, or to a `batch` span when it runs several callers' items.
//!
//! A test binary of its own: tracing caches whether a span is enabled per call site, for the
//! whole process, so tests on other threads without this subscriber would race with it.

#[allow(dead_code)]
#[path = "integration/fake.rs"]
mod fake;

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aki_batching::BatchConfig;
use tracing::Instrument;

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

#[test]
fn the_batch_function_logs_inside_its_callers_span() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber =
        tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).without_time().finish();
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
}
