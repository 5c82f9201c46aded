//! The inference thread: owns the model, runs each job in the caller's span, sorted by length
//! and cut into forward passes, with a panic caught and answered as an error.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

use aki_core::{EmbedError, Encoding, Result};
use tokio::sync::oneshot;

use crate::batch::Output;
use crate::model::Model;

/// One inference request for the model thread.
pub(crate) struct Job {
    /// The checked inputs.
    pub(crate) batch: Vec<Encoding>,
    /// What to return for each input.
    pub(crate) output: Output,
    /// Where the outputs go, in input order.
    pub(crate) reply: oneshot::Sender<Result<Vec<Vec<f32>>>>,
    /// The caller's span (a request's, or a batch's linked to its requests).
    pub(crate) span: tracing::Span,
}

/// Starts the thread that owns the model; it ends when the backend (the sender) is dropped.
pub(crate) fn spawn(model: Model, max_batch: usize, name: &str) -> Result<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name(format!("aki-infer-{}", name.rsplit('/').next().unwrap_or(name)))
        .spawn(move || {
            for job in rx {
                let _entered = job.span.enter();
                let result = catch_unwind(AssertUnwindSafe(|| run_sorted(&model, &job.batch, job.output, max_batch)))
                    .unwrap_or_else(|panic| {
                        Err(EmbedError::Internal(format!("inference panicked: {}", panic_text(&panic))))
                    });
                // The caller may have gone away; its result is then simply dropped.
                let _ = job.reply.send(result);
            }
        })
        .map_err(|e| EmbedError::Load(format!("cannot start the inference thread: {e}")))?;
    Ok(tx)
}

/// Runs `batch` in chunks of at most `max_batch` sequences of similar length (less padding),
/// returning vectors in the original order.
fn run_sorted(model: &Model, batch: &[Encoding], output: Output, max_batch: usize) -> Result<Vec<Vec<f32>>> {
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by_key(|&i| batch[i].len());
    let mut out = vec![Vec::new(); batch.len()];
    for chunk in order.chunks(max_batch) {
        let inputs: Vec<&Encoding> = chunk.iter().map(|&i| &batch[i]).collect();
        let vectors = model.forward(&inputs, output)?;
        for (&i, v) in chunk.iter().zip(vectors) {
            out[i] = v;
        }
    }
    Ok(out)
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}
