//! What every streaming method shares: the messages of a client stream under the idle bound
//! (`limits.stream_idle_secs`), and their answers in order.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use tonic::{Status, Streaming};
use tracing::Instrument;

use crate::failure::fail_read;

/// Messages of one stream in flight at once; they join the shared batches and are answered in
/// order.
pub const STREAM_CONCURRENCY: usize = 64;

/// A stream of answers, as a streaming method returns it.
pub type Answers<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The messages of `inbound`. One that does not come within `idle` while no answer is pending
/// (the client is waiting on the server then, not idle) is replaced by DEADLINE_EXCEEDED, which
/// ends the stream. `pending` counts the messages taken whose answers are not written yet: the
/// caller takes one off each time it writes an answer.
pub fn messages<T: Send + 'static>(
    inbound: Streaming<T>,
    idle: Duration,
    pending: Arc<AtomicUsize>,
) -> impl Stream<Item = Result<T, Status>> + Send {
    futures_util::stream::unfold((Some(inbound), pending), move |(inbound, pending)| async move {
        let mut inbound = inbound?;
        loop {
            match tokio::time::timeout(idle, inbound.next()).await {
                Ok(Some(message)) => {
                    pending.fetch_add(1, Ordering::SeqCst);
                    return Some((message, (Some(inbound), pending)));
                }
                Ok(None) => return None,
                Err(_) if pending.load(Ordering::SeqCst) > 0 => {}
                Err(_) => {
                    let status = Status::deadline_exceeded(format!(
                        "the stream sent no message for {} s (limits.stream_idle_secs)",
                        idle.as_secs()
                    ));
                    pending.fetch_add(1, Ordering::SeqCst);
                    return Some((Err(status), (None, pending)));
                }
            }
        }
    })
}

/// Each message of `inbound` answered by `answer`, in order, up to [`STREAM_CONCURRENCY`] at
/// once; a failed message (or the idle bound, or a message that cannot be read, logged under
/// `route`) ends the stream with its status, as TEI's streams end.
pub fn answer_each<T, R, F, Fut>(route: &'static str, inbound: Streaming<T>, idle: Duration, answer: F) -> Answers<R>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, Status>> + Send + 'static,
{
    let pending = Arc::new(AtomicUsize::new(0));
    let answer = Arc::new(answer);
    // Messages are answered while the response body is polled, outside the call's span.
    let call = tracing::Span::current();
    let answers = messages(inbound, idle, Arc::clone(&pending))
        .map(move |message| {
            let (answer, pending) = (Arc::clone(&answer), Arc::clone(&pending));
            async move {
                let answered = match message {
                    Ok(message) => answer(message).await,
                    Err(status) => Err(fail_read(route, status)),
                };
                pending.fetch_sub(1, Ordering::SeqCst);
                answered
            }
            .instrument(call.clone())
        })
        .buffered(STREAM_CONCURRENCY);
    // The first failure is the stream's last answer.
    let ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
    Box::pin(answers.take_while(move |answer| {
        let go_on = !ended.load(Ordering::SeqCst);
        if answer.is_err() {
            ended.store(true, Ordering::SeqCst);
        }
        std::future::ready(go_on)
    }))
}
