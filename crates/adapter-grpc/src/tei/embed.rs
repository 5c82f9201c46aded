//! `tei.v1.Embed`: `Embed` and `EmbedStream` (one vector per message; TEI's defaults: normalised,
//! not truncated). `EmbedSparse` and `EmbedAll` need a SPLADE model and token vectors, which no
//! model this server runs gives yet: they are refused as unimplemented, saying so.

use std::time::Instant;

use aki_core::{EmbedOptions, Lane, Timing};
use aki_service::{Caller, EmbedRequest, Inputs, PromptChoice, Requester};
use tonic::{Request, Response, Status, Streaming};

use super::{TeiService, encode, metadata, timed};
use crate::convert::grpc_deadline;
use crate::streams::{Answers, answer_each};
use crate::tei_pb;

const EMBED: &str = "/tei.v1.Embed/Embed";
const EMBED_STREAM: &str = "/tei.v1.Embed/EmbedStream";

impl TeiService {
    /// One message's vector, with its lane and timing.
    async fn embed_one(
        &self,
        route: &str,
        message: tei_pb::EmbedRequest,
        deadline: Option<Instant>,
        caller: Caller,
    ) -> Result<(tei_pb::EmbedResponse, Lane, Timing), Status> {
        let chars = message.inputs.chars().count();
        let request = EmbedRequest {
            model: None,
            inputs: Inputs::Texts(vec![message.inputs]),
            options: EmbedOptions {
                normalize: Some(message.normalize.unwrap_or(true)),
                encode: encode(message.truncate, message.truncation_direction),
                dimensions: message.dimensions.map(|d| d as usize),
            },
            prompt: PromptChoice { name: message.prompt_name, text: None },
            deadline,
            caller,
        };
        let reply = self.engine.service.embed(route, request).await.map_err(Self::failed(route))?;
        let answer = tei_pb::EmbedResponse {
            metadata: Some(metadata(chars, reply.tokens, reply.timing, reply.total)),
            embeddings: reply.vectors.into_iter().next().unwrap_or_default(),
        };
        Ok((answer, reply.lane, reply.timing))
    }
}

fn no_sparse() -> Status {
    Status::unimplemented(
        "sparse embeddings need a SPLADE model (a masked-LM head with splade pooling); this server does not run \
         one yet",
    )
}

fn no_token_vectors() -> Status {
    Status::unimplemented("token embeddings (EmbedAll) are not served yet; use Embed for pooled vectors")
}

#[tonic::async_trait]
impl tei_pb::embed_server::Embed for TeiService {
    async fn embed(&self, request: Request<tei_pb::EmbedRequest>) -> Result<Response<tei_pb::EmbedResponse>, Status> {
        let (deadline, caller) = (grpc_deadline(request.metadata()), crate::service::caller_of(&request));
        let (answer, lane, timing) = self.embed_one(EMBED, request.into_inner(), deadline, caller).await?;
        Ok(timed(answer, lane, timing))
    }

    type EmbedStreamStream = Answers<tei_pb::EmbedResponse>;

    async fn embed_stream(
        &self,
        request: Request<Streaming<tei_pb::EmbedRequest>>,
    ) -> Result<Response<Self::EmbedStreamStream>, Status> {
        let deadline = grpc_deadline(request.metadata());
        // A stream is one requester: its messages' tokens add up for the lane.
        let caller = Caller { requester: Some(Requester::new()), ..crate::service::caller_of(&request) };
        let service = self.clone();
        let answers = answer_each(EMBED_STREAM, request.into_inner(), self.idle(), move |message| {
            let (service, caller) = (service.clone(), caller.clone());
            async move { service.embed_one(EMBED_STREAM, message, deadline, caller).await.map(|(a, _, _)| a) }
        });
        Ok(Response::new(answers))
    }

    async fn embed_sparse(
        &self,
        _request: Request<tei_pb::EmbedSparseRequest>,
    ) -> Result<Response<tei_pb::EmbedSparseResponse>, Status> {
        Err(no_sparse())
    }

    type EmbedSparseStreamStream = Answers<tei_pb::EmbedSparseResponse>;

    async fn embed_sparse_stream(
        &self,
        _request: Request<Streaming<tei_pb::EmbedSparseRequest>>,
    ) -> Result<Response<Self::EmbedSparseStreamStream>, Status> {
        Err(no_sparse())
    }

    async fn embed_all(
        &self,
        _request: Request<tei_pb::EmbedAllRequest>,
    ) -> Result<Response<tei_pb::EmbedAllResponse>, Status> {
        Err(no_token_vectors())
    }

    type EmbedAllStreamStream = Answers<tei_pb::EmbedAllResponse>;

    async fn embed_all_stream(
        &self,
        _request: Request<Streaming<tei_pb::EmbedAllRequest>>,
    ) -> Result<Response<Self::EmbedAllStreamStream>, Status> {
        Err(no_token_vectors())
    }
}
