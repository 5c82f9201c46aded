//! The message steps of `tei.v1.Embed`'s `EmbedSparse` (a SPLADE model's non-zero entries) and
//! `EmbedAll` (the vector of every token).

use std::time::Instant;

use aki_core::EmbedOptions;
use aki_service::{Caller, EmbedRequest, Inputs, PromptChoice};

use super::{Answered, TeiService, encode, metadata};
use crate::tei_pb;

/// An embedding request of one text without normalisation or `dimensions` (`EmbedSparse` and
/// `EmbedAll` have neither).
fn plain(
    inputs: String,
    truncate: bool,
    direction: i32,
    prompt_name: Option<String>,
    deadline: Option<Instant>,
    caller: Caller,
) -> EmbedRequest {
    EmbedRequest {
        model: None,
        inputs: Inputs::Texts(vec![inputs]),
        options: EmbedOptions {
            normalize: Some(false),
            encode: encode(truncate, direction),
            ..EmbedOptions::default()
        },
        prompt: PromptChoice { name: prompt_name, text: None },
        deadline,
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
        let request = plain(inputs, truncate, truncation_direction, prompt_name, deadline, caller);
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
        let request = plain(inputs, truncate, truncation_direction, prompt_name, deadline, caller);
        let reply = self.engine.service.embed_all(route, request).await.map_err(Self::failed(route))?;
        let tokens = reply.vectors.into_iter().next().unwrap_or_default();
        let answer = tei_pb::EmbedAllResponse {
            token_embeddings: tokens.into_iter().map(|embeddings| tei_pb::TokenEmbedding { embeddings }).collect(),
            metadata: Some(metadata(chars, reply.tokens, reply.timing, reply.total)),
        };
        Ok((answer, reply.lane, reply.timing))
    }
}
