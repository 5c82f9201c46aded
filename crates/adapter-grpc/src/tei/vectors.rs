//! The message steps of `tei.v1.Embed`'s `EmbedSparse` (a SPLADE model's non-zero entries) and
//! `EmbedAll` (the vector of every token), and the stream shape every `Embed` stream shares.

use std::future::Future;
use std::time::Instant;

use aki_core::{EmbedOptions, Lane, Timing};
use aki_service::{Caller, EmbedRequest, Inputs, PromptChoice, Requester};
use tonic::{Request, Status, Streaming};

use super::{TeiService, encode, metadata};
use crate::convert::grpc_deadline;
use crate::streams::{Answers, answer_each};
use crate::tei_pb;

/// A message's answer with its lane and timing.
pub(super) type Answered<A> = Result<(A, Lane, Timing), Status>;

/// An embedding request of one text without normalisation or `dimensions` (`EmbedSparse` and
/// `EmbedAll` have neither).
fn plain(inputs: String, truncate: bool, direction: i32, prompt_name: Option<String>, caller: Caller) -> EmbedRequest {
    EmbedRequest {
        model: None,
        inputs: Inputs::Texts(vec![inputs]),
        options: EmbedOptions {
            normalize: Some(false),
            encode: encode(truncate, direction),
            ..EmbedOptions::default()
        },
        prompt: PromptChoice { name: prompt_name, text: None },
        deadline: None,
        caller,
    }
}

impl TeiService {
    /// One message's sparse vector.
    pub(super) async fn sparse_one(
        &self,
        route: &str,
        message: tei_pb::EmbedSparseRequest,
        deadline: Option<Instant>,
        caller: Caller,
    ) -> Answered<tei_pb::EmbedSparseResponse> {
        let chars = message.inputs.chars().count();
        let tei_pb::EmbedSparseRequest { inputs, truncate, truncation_direction, prompt_name } = message;
        let request = EmbedRequest { deadline, ..plain(inputs, truncate, truncation_direction, prompt_name, caller) };
        let reply = self.engine.service.embed_sparse(route, request).await.map_err(Self::failed(route))?;
        let sparse = reply.vectors.into_iter().next().unwrap_or_default();
        let answer = tei_pb::EmbedSparseResponse {
            sparse_embeddings: sparse
                .into_iter()
                .map(|(index, value)| tei_pb::SparseValue { index: super::small(index), value })
                .collect(),
            metadata: Some(metadata(chars, reply.tokens, reply.timing, reply.total)),
        };
        Ok((answer, reply.lane, reply.timing))
    }

    /// One message's token vectors.
    pub(super) async fn all_one(
        &self,
        route: &str,
        message: tei_pb::EmbedAllRequest,
        deadline: Option<Instant>,
        caller: Caller,
    ) -> Answered<tei_pb::EmbedAllResponse> {
        let chars = message.inputs.chars().count();
        let tei_pb::EmbedAllRequest { inputs, truncate, truncation_direction, prompt_name } = message;
        let request = EmbedRequest { deadline, ..plain(inputs, truncate, truncation_direction, prompt_name, caller) };
        let reply = self.engine.service.embed_all(route, request).await.map_err(Self::failed(route))?;
        let tokens = reply.vectors.into_iter().next().unwrap_or_default();
        let answer = tei_pb::EmbedAllResponse {
            token_embeddings: tokens.into_iter().map(|embeddings| tei_pb::TokenEmbedding { embeddings }).collect(),
            metadata: Some(metadata(chars, reply.tokens, reply.timing, reply.total)),
        };
        Ok((answer, reply.lane, reply.timing))
    }

    /// Each message of a stream answered by `one`, under `route`, as one requester (its
    /// messages' tokens add up for the lane), with the stream's deadline.
    pub(super) fn each<M, A, F, Fut>(&self, route: &'static str, request: Request<Streaming<M>>, one: F) -> Answers<A>
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
}
