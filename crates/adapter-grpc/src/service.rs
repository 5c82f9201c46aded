//! `EmbedderService`: the `aki.embed.v1.Embedder` methods, each a message mapped to a call of the
//! application service and its reply mapped back; a failure becomes its status in
//! [`fail`](crate::failure::fail), which logs it.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aki_core::quantize::Quantized;
use aki_service::{Caller, EmbedReply, Requester};
use aki_wiring::Engine;
use futures_util::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use crate::convert::{
    embed_request, embed_response, embedding_types, grpc_deadline, info_response, rerank_request, rerank_response,
    timing_metadata, tokenize_request, tokenize_response,
};
use crate::failure::{fail, fail_read};
use crate::pb;
use crate::streams::{STREAM_CONCURRENCY, messages};

const EMBED: &str = "/aki.embed.v1.Embedder/Embed";
const EMBED_STREAM: &str = "/aki.embed.v1.Embedder/EmbedStream";
const INFO: &str = "/aki.embed.v1.Embedder/Info";
const TOKENIZE: &str = "/aki.embed.v1.Embedder/Tokenize";
const RERANK: &str = "/aki.embed.v1.Embedder/Rerank";

/// The Embedder service over an [`Engine`].
#[derive(Clone)]
pub struct EmbedderService {
    engine: Arc<Engine>,
}

impl EmbedderService {
    /// A service answering from `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }

    async fn embed_on(
        &self,
        route: &str,
        message: pb::EmbedRequest,
        deadline: Option<std::time::Instant>,
        caller: Caller,
    ) -> Result<EmbedReply<Quantized>, Status> {
        let service = &self.engine.service;
        let types = embedding_types(&message);
        let long = service.long_inputs(message.windows, message.window_overlap.map(|o| o as usize));
        let answer = match types.and_then(|types| Ok((types, embed_request(message, deadline, caller)?))) {
            Ok((types, mut request)) => {
                request.options.long = long;
                service.embed_quantized(route, request, &types).await
            }
            Err(error) => {
                service.reject(route, &error);
                Err(error)
            }
        };
        answer.map_err(|e| fail(route, &e))
    }
}

/// The caller the key check found (see `server.rs`); the default one when the call did not go
/// through it.
pub(crate) fn caller_of<T>(request: &Request<T>) -> Caller {
    request.extensions().get::<Caller>().cloned().unwrap_or_default()
}

/// `message` answered with the lane and timing in its metadata.
fn timed<T>(message: T, lane: aki_core::Lane, timing: aki_core::Timing) -> Response<T> {
    let mut response = Response::new(message);
    *response.metadata_mut() = timing_metadata(lane, timing);
    response
}

type EmbedStream = Pin<Box<dyn Stream<Item = Result<pb::EmbedResponse, Status>> + Send>>;

/// The answer in a stream to a request that failed with `status`.
fn stream_error(status: &Status) -> pb::EmbedResponse {
    let error = pb::StreamError { code: status.code() as i32, message: status.message().to_string() };
    pb::EmbedResponse { error: Some(error), ..Default::default() }
}

#[tonic::async_trait]
impl pb::embedder_server::Embedder for EmbedderService {
    async fn embed(&self, request: Request<pb::EmbedRequest>) -> Result<Response<pb::EmbedResponse>, Status> {
        let (deadline, caller) = (grpc_deadline(request.metadata()), caller_of(&request));
        let reply = self.embed_on(EMBED, request.into_inner(), deadline, caller).await?;
        let (lane, timing) = (reply.lane, reply.timing);
        Ok(timed(embed_response(reply), lane, timing))
    }

    type EmbedStreamStream = EmbedStream;

    async fn embed_stream(
        &self,
        request: Request<Streaming<pb::EmbedRequest>>,
    ) -> Result<Response<Self::EmbedStreamStream>, Status> {
        let service = self.clone();
        let deadline = grpc_deadline(request.metadata());
        // A stream is one requester: its messages' tokens add up for the lane, and they queue
        // as one request for fairness.
        let caller = Caller { requester: Some(Requester::new()), ..caller_of(&request) };
        let idle = Duration::from_secs(self.engine.config.limits.stream_idle_secs);
        let pending = Arc::new(AtomicUsize::new(0));
        let messages = messages(request.into_inner(), idle, Arc::clone(&pending));
        // Messages are answered while the response body is polled, outside the call's span.
        let call = tracing::Span::current();
        let answers = messages
            .map(move |message| {
                let (service, caller, pending) = (service.clone(), caller.clone(), Arc::clone(&pending));
                async move {
                    let answer = match message {
                        Ok(message) => {
                            service.embed_on(EMBED_STREAM, message, deadline, caller).await.map(embed_response)
                        }
                        Err(status) => Err(fail_read(EMBED_STREAM, status)),
                    };
                    pending.fetch_sub(1, Ordering::SeqCst);
                    // One failed request is answered in its place; the stream goes on.
                    Ok(answer.unwrap_or_else(|status| stream_error(&status)))
                }
                .instrument(call.clone())
            })
            .buffered(STREAM_CONCURRENCY);
        Ok(Response::new(Box::pin(answers)))
    }

    async fn info(&self, _request: Request<pb::InfoRequest>) -> Result<Response<pb::InfoResponse>, Status> {
        let info = self.engine.service.info(INFO).await.map_err(|e| fail(INFO, &e))?;
        Ok(Response::new(info_response(info)))
    }

    async fn tokenize(&self, request: Request<pb::TokenizeRequest>) -> Result<Response<pb::TokenizeResponse>, Status> {
        let deadline = grpc_deadline(request.metadata());
        let request = tokenize_request(request.into_inner(), deadline);
        let tokens = self.engine.service.tokenize(TOKENIZE, request).await.map_err(|e| fail(TOKENIZE, &e))?;
        Ok(Response::new(tokenize_response(tokens)))
    }

    async fn rerank(&self, request: Request<pb::RerankRequest>) -> Result<Response<pb::RerankResponse>, Status> {
        let (deadline, caller) = (grpc_deadline(request.metadata()), caller_of(&request));
        let request = rerank_request(request.into_inner(), deadline, caller);
        let reply = self.engine.service.rerank(RERANK, request).await.map_err(|e| fail(RERANK, &e))?;
        let (lane, timing) = (reply.lane, reply.timing);
        Ok(timed(rerank_response(reply), lane, timing))
    }
}
