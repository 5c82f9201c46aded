//! One batch run: the handler on its own task (a panic becomes an error), the outputs routed to
//! their submissions, and a failed shared batch retried caller by caller.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aki_core::{EmbedError, Result};
use tracing::Instrument;

use super::handler::{BatchHandler, BatchObserver};
use super::message::Route;
use super::submission::Submission;

/// Runs `items` (routed by `routes`) on `handler`; returns how long the model was busy with
/// them (retries included) and whether the first call succeeded. Items of a batch shared by
/// several callers are kept, so that a failure caused by one caller's input can be retried
/// without it.
pub(super) async fn run_and_route<I: Clone + Send + 'static, O: Send + 'static>(
    handler: Arc<dyn BatchHandler<I, O>>,
    items: Vec<I>,
    routes: Vec<Route<O>>,
    observer: Option<Arc<dyn BatchObserver>>,
) -> (Duration, bool) {
    let observer = observer.as_deref();
    let shared = routes.iter().any(|(_, s)| !Arc::ptr_eq(s, &routes[0].1));
    let kept = shared.then(|| items.clone());
    let (outcome, inference) = run_batch(&handler, items, &routes, observer).await;
    credit_inference(&routes, inference);
    let (mut busy, ok) = (inference, outcome.is_ok());
    match (outcome, kept) {
        (Ok(outputs), _) => fill(routes, outputs),
        (Err(error), Some(items)) => {
            tracing::warn!(%error, items = routes.len(), "a shared batch failed; retrying each caller's items on their own");
            for (items, routes) in by_submission(items, routes) {
                if routes[0].1.is_dead() {
                    continue;
                }
                let (outcome, inference) = run_batch(&handler, items, &routes, observer).await;
                credit_inference(&routes, inference);
                busy += inference;
                match outcome {
                    Ok(outputs) => fill(routes, outputs),
                    Err(error) => fail(routes, &error),
                }
            }
        }
        (Err(error), None) => fail(routes, &error),
    }
    (busy, ok)
}

/// Runs one batch, a panic in the handler becoming an internal error, in a `batch` span (see
/// [`spans_of`]); reports it to the observer and returns the outcome and its duration.
async fn run_batch<I: Send + 'static, O: Send + 'static>(
    handler: &Arc<dyn BatchHandler<I, O>>,
    items: Vec<I>,
    routes: &[Route<O>],
    observer: Option<&dyn BatchObserver>,
) -> (Result<Vec<O>>, Duration) {
    let expected = routes.len();
    let (span, _inference) = spans_of(routes);
    let started = Instant::now();
    let handler = Arc::clone(handler);
    // A panic in the handler ends only this inner task.
    let outcome = match tokio::spawn(async move { handler.run(items).await }.instrument(span)).await {
        Ok(Ok(outputs)) if outputs.len() == expected => Ok(outputs),
        Ok(Ok(outputs)) => Err(EmbedError::Internal(format!(
            "the batch function returned {} results for {expected} items",
            outputs.len()
        ))),
        Ok(Err(error)) => Err(error),
        Err(join_error) => {
            tracing::error!(%join_error, "batch function panicked");
            Err(EmbedError::Internal("the batch function panicked".into()))
        }
    };
    let inference = started.elapsed();
    if let Some(observer) = observer {
        observer.completed(inference, outcome.is_ok());
    }
    (outcome, inference)
}

/// The spans of one model call: each caller gets an `inference` span (a child of its own) for
/// the time the call holds its items, and the call itself a `batch` span; with one caller the
/// batch is a child of its `inference` span, so what the model logs belongs to the request;
/// with several it starts its own trace, following from (linked to, in OpenTelemetry) every
/// caller's span, as TEI links a batch to its requests.
fn spans_of<O>(routes: &[Route<O>]) -> (tracing::Span, Vec<tracing::Span>) {
    let submissions = distinct(routes);
    let inference: Vec<tracing::Span> = submissions
        .iter()
        .map(|submission| {
            let items = routes.iter().filter(|(_, s)| Arc::ptr_eq(s, submission)).count();
            tracing::info_span!(parent: &submission.span, "inference", items)
        })
        .collect();
    let (items, callers) = (routes.len(), submissions.len());
    let batch = match inference.as_slice() {
        [only] => tracing::info_span!(parent: only, "batch", items, callers),
        _ => {
            let batch = tracing::info_span!(parent: None, "batch", items, callers);
            for submission in &submissions {
                batch.follows_from(&submission.span);
            }
            batch
        }
    };
    (batch, inference)
}

/// The submissions of `routes`, each once, in order of first appearance.
fn distinct<O>(routes: &[Route<O>]) -> Vec<&Arc<Submission<O>>> {
    let mut seen: Vec<&Arc<Submission<O>>> = Vec::new();
    for (_, submission) in routes {
        if !seen.iter().any(|s| Arc::ptr_eq(s, submission)) {
            seen.push(submission);
        }
    }
    seen
}

/// Each submission in a run spent `inference` on it, once however many of its items it held.
fn credit_inference<O>(routes: &[Route<O>], inference: Duration) {
    for submission in distinct(routes) {
        submission.ran(inference);
    }
}

fn fill<O>(routes: Vec<Route<O>>, outputs: Vec<O>) {
    for ((index, submission), output) in routes.into_iter().zip(outputs) {
        submission.fill(index, output);
    }
}

fn fail<O>(routes: Vec<Route<O>>, error: &EmbedError) {
    for (_, submission) in routes {
        submission.fail(error.clone());
    }
}

/// The items and routes of a batch, grouped by submission in order of first appearance.
fn by_submission<I, O>(items: Vec<I>, routes: Vec<Route<O>>) -> Vec<(Vec<I>, Vec<Route<O>>)> {
    let mut groups: Vec<(Vec<I>, Vec<Route<O>>)> = Vec::new();
    for (item, route) in items.into_iter().zip(routes) {
        match groups.iter_mut().find(|(_, r)| Arc::ptr_eq(&r[0].1, &route.1)) {
            Some((items, routes)) => {
                items.push(item);
                routes.push(route);
            }
            None => groups.push((vec![item], vec![route])),
        }
    }
    groups
}
