//! TEI's `tei.v1` services (`Info`, `Embed`, `Predict`, `Rerank`, `Tokenize`) over the same
//! application service as `aki.embed.v1`, so TEI's generated clients work unchanged: one method
//! family per file, the message conversions they share here. Each answer carries TEI's
//! `Metadata` (characters, tokens and times in nanoseconds) and the same timing metadata as
//! `aki.embed.v1`; the streams of embed and predict answer each message as their unary method
//! would (`each`).

mod embed;
mod info;
mod predict;
mod rerank;
mod tokenize;
mod vectors;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aki_core::{EncodeOptions, Lane, Timing, TruncationDirection};
use aki_service::{Caller, Requester};
use aki_wiring::Engine;
use tonic::{Request, Response, Status, Streaming};

use crate::convert::{grpc_deadline, timing_metadata};
use crate::failure::fail;
use crate::streams::{Answers, answer_each};
use crate::tei_pb;

/// The `tei.v1` services over an [`Engine`].
#[derive(Clone)]
pub struct TeiService {
    engine: Arc<Engine>,
}

impl TeiService {
    /// The services answering from `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }

    /// How long a stream may send nothing (`limits.stream_idle_secs`).
    fn idle(&self) -> Duration {
        Duration::from_secs(self.engine.config.limits.stream_idle_secs)
    }

    /// Each message of a stream answered by `one`, under `route`, as one requester (its
    /// messages' tokens add up for the lane), with the stream's deadline.
    fn each<M, A, F, Fut>(&self, route: &'static str, request: Request<Streaming<M>>, one: F) -> Answers<A>
    where
        M: Send + 'static,
        A: Send + 'static,
        F: Fn(TeiService, M, Option<Instant>, Caller) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Answered<A>> + Send + 'static,
    {
        let deadline = grpc_deadline(request.metadata());
        let caller = Caller { requester: Some(Requester::new()), ..crate::service::caller_of(&request) };
        let service = self.clone();
        answer_each(route, request.into_inner(), self.idle(), move |message| {
            let answered = one(service.clone(), message, deadline, caller.clone());
            async move { answered.await.map(|(answer, _, _)| answer) }
        })
    }

    /// A service call's failure as its status, logged once under `route`.
    fn failed(route: &str) -> impl Fn(aki_core::EmbedError) -> Status + '_ {
        move |error| fail(route, &error)
    }
}

/// A message's answer with its lane and timing.
type Answered<A> = Result<(A, Lane, Timing), Status>;

/// TEI's truncation (off unless asked) from a message's fields.
fn encode(truncate: bool, direction: i32) -> EncodeOptions {
    let direction = match tei_pb::TruncationDirection::try_from(direction) {
        Ok(tei_pb::TruncationDirection::Left) => TruncationDirection::Left,
        _ => TruncationDirection::Right,
    };
    EncodeOptions { truncate, direction }
}

fn small(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// TEI's `Metadata` of an answer.
fn metadata(chars: usize, tokens: usize, timing: Timing, total: Duration) -> tei_pb::Metadata {
    tei_pb::Metadata {
        compute_chars: small(chars),
        compute_tokens: small(tokens),
        total_time_ns: nanos(total),
        tokenization_time_ns: nanos(timing.tokenize),
        queue_time_ns: nanos(timing.queue),
        inference_time_ns: nanos(timing.inference),
    }
}

/// `message` answered with the lane and timing in its metadata, as `aki.embed.v1` answers.
fn timed<T>(message: T, lane: Lane, timing: Timing) -> Response<T> {
    let mut response = Response::new(message);
    *response.metadata_mut() = timing_metadata(lane, timing);
    response
}
