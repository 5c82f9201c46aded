//! `tei.v1.Embed`: `Embed` and `EmbedStream` (one vector per message; TEI's defaults: normalised,
//! not truncated), `EmbedSparse` (a SPLADE model's non-zero entries) and `EmbedAll` (the vector
//! of every token) and their streams; the last two's message steps are in `vectors.rs`.

use std::time::Instant;

use aki_core::EmbedOptions;
use aki_service::{Caller, EmbedRequest, Inputs, PromptChoice};
use tonic::{Request, Response, Status, Streaming};

use super::Answered;
use super::{TeiService, encode, metadata, timed};
use crate::convert::grpc_deadline;
use crate::streams::Answers;
use crate::tei_pb;

const EMBED: &str = "/tei.v1.Embed/Embed";
const EMBED_STREAM: &str = "/tei.v1.Embed/EmbedStream";
const EMBED_SPARSE: &str = "/tei.v1.Embed/EmbedSparse";
const EMBED_SPARSE_STREAM: &str = "/tei.v1.Embed/EmbedSparseStream";
const EMBED_ALL: &str = "/tei.v1.Embed/EmbedAll";
const EMBED_ALL_STREAM: &str = "/tei.v1.Embed/EmbedAllStream";

impl TeiService {
    /// One message's vector, with its lane and timing.
    async fn embed_one(
        &self,
        route: &str,
        message: tei_pb::EmbedRequest,
        deadline: Option<Instant>,
        caller: Caller,
    ) -> Answered<tei_pb::EmbedResponse> {
        let chars = message.inputs.chars().count();
        let request = EmbedRequest {
            model: None,
            inputs: Inputs::Texts(vec![message.inputs]),
            options: EmbedOptions {
                normalize: Some(message.normalize.unwrap_or(true)),
                encode: encode(message.truncate, message.truncation_direction),
                dimensions: message.dimensions.map(|d| d as usize),
                ..EmbedOptions::default()
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
        let answers = self.each(EMBED_STREAM, request, |service, message, deadline, caller| async move {
            service.embed_one(EMBED_STREAM, message, deadline, caller).await
        });
        Ok(Response::new(answers))
    }

    async fn embed_sparse(
        &self,
        request: Request<tei_pb::EmbedSparseRequest>,
    ) -> Result<Response<tei_pb::EmbedSparseResponse>, Status> {
        let (deadline, caller) = (grpc_deadline(request.metadata()), crate::service::caller_of(&request));
        let (answer, lane, timing) = self.sparse_one(EMBED_SPARSE, request.into_inner(), deadline, caller).await?;
        Ok(timed(answer, lane, timing))
    }

    type EmbedSparseStreamStream = Answers<tei_pb::EmbedSparseResponse>;

    async fn embed_sparse_stream(
        &self,
        request: Request<Streaming<tei_pb::EmbedSparseRequest>>,
    ) -> Result<Response<Self::EmbedSparseStreamStream>, Status> {
        let answers = self.each(EMBED_SPARSE_STREAM, request, |service, message, deadline, caller| async move {
            service.sparse_one(EMBED_SPARSE_STREAM, message, deadline, caller).await
        });
        Ok(Response::new(answers))
    }

    async fn embed_all(
        &self,
        request: Request<tei_pb::EmbedAllRequest>,
    ) -> Result<Response<tei_pb::EmbedAllResponse>, Status> {
        let (deadline, caller) = (grpc_deadline(request.metadata()), crate::service::caller_of(&request));
        let (answer, lane, timing) = self.all_one(EMBED_ALL, request.into_inner(), deadline, caller).await?;
        Ok(timed(answer, lane, timing))
    }

    type EmbedAllStreamStream = Answers<tei_pb::EmbedAllResponse>;

    async fn embed_all_stream(
        &self,
        request: Request<Streaming<tei_pb::EmbedAllRequest>>,
    ) -> Result<Response<Self::EmbedAllStreamStream>, Status> {
        let answers = self.each(EMBED_ALL_STREAM, request, |service, message, deadline, caller| async move {
            service.all_one(EMBED_ALL_STREAM, message, deadline, caller).await
        });
        Ok(Response::new(answers))
    }
}
