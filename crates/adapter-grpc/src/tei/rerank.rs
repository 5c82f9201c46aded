//! `tei.v1.Rerank`: texts ranked against a query by a cross-encoder, best first; `RerankStream`
//! takes (query, text) pairs as a client stream and ranks them all in one answer (up to
//! `limits.max_inputs` pairs; `raw_scores` and `return_text` read from the first message, as TEI
//! reads them, and here the truncation too).

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use aki_core::{ClassifierInput, EmbedError};
use aki_service::{PredictRequest, RerankRequest};
use futures_util::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::{TeiService, encode, metadata, small, timed};
use crate::convert::grpc_deadline;
use crate::failure::{fail, fail_read};
use crate::streams::messages;
use crate::tei_pb;

const RERANK: &str = "/tei.v1.Rerank/Rerank";
const RERANK_STREAM: &str = "/tei.v1.Rerank/RerankStream";

#[tonic::async_trait]
impl tei_pb::rerank_server::Rerank for TeiService {
    async fn rerank(
        &self,
        request: Request<tei_pb::RerankRequest>,
    ) -> Result<Response<tei_pb::RerankResponse>, Status> {
        let (deadline, caller) = (grpc_deadline(request.metadata()), crate::service::caller_of(&request));
        let m = request.into_inner();
        let chars = m.query.chars().count() * m.texts.len() + m.texts.iter().map(|t| t.chars().count()).sum::<usize>();
        let texts = m.return_text.then(|| m.texts.clone());
        let request = RerankRequest {
            model: None,
            query: m.query,
            texts: m.texts,
            encode: encode(m.truncate, m.truncation_direction),
            raw_scores: m.raw_scores,
            top_n: None,
            deadline,
            caller,
        };
        let reply = self.engine.service.rerank(RERANK, request).await.map_err(Self::failed(RERANK))?;
        let text = |index: usize| texts.as_ref().and_then(|t| t.get(index).cloned());
        let answer = tei_pb::RerankResponse {
            ranks: reply
                .ranked
                .iter()
                .map(|r| tei_pb::Rank { index: small(r.index), text: text(r.index), score: r.score })
                .collect(),
            metadata: Some(metadata(chars, reply.tokens, reply.timing, reply.total)),
        };
        Ok(timed(answer, reply.lane, reply.timing))
    }

    async fn rerank_stream(
        &self,
        request: Request<Streaming<tei_pb::RerankStreamRequest>>,
    ) -> Result<Response<tei_pb::RerankResponse>, Status> {
        let (deadline, caller) = (grpc_deadline(request.metadata()), crate::service::caller_of(&request));
        let refuse = |error: EmbedError| {
            self.engine.service.reject(RERANK_STREAM, &error);
            fail(RERANK_STREAM, &error)
        };
        // A reranker has one label: anything else is refused before any pair is read.
        let model = self.engine.service.served().await.map_err(refuse)?;
        if !model.is_reranker() {
            return Err(refuse(EmbedError::Validation(format!(
                "model `{}` has {} output labels; reranking needs a cross-encoder with one",
                model.model_id,
                model.labels.len()
            ))));
        }
        let most = self.engine.config.limits.max_inputs;
        let mut pairs = Vec::new();
        // Nothing is answered before the stream ends, so no answer is ever pending.
        let mut inbound = Box::pin(messages(request.into_inner(), self.idle(), Arc::new(AtomicUsize::new(0))));
        while let Some(message) = inbound.next().await {
            pairs.push(message.map_err(|status| fail_read(RERANK_STREAM, status))?);
            if pairs.len() > most {
                return Err(refuse(EmbedError::Validation(format!(
                    "the stream sent more than {most} pairs, the limit of one request"
                ))));
            }
        }
        let Some(first) = pairs.first() else {
            return Err(refuse(EmbedError::Empty));
        };
        let (encode, raw_scores, return_text) =
            (encode(first.truncate, first.truncation_direction), first.raw_scores, first.return_text);
        let chars = pairs.iter().map(|p| p.query.chars().count() + p.text.chars().count()).sum();
        let texts: Vec<String> = if return_text { pairs.iter().map(|p| p.text.clone()).collect() } else { Vec::new() };
        let inputs = pairs.into_iter().map(|p| ClassifierInput::Pair(p.query, p.text)).collect();
        let request = PredictRequest { model: None, inputs, encode, raw_scores, deadline, caller };
        let reply = self.engine.service.predict(RERANK_STREAM, request).await.map_err(Self::failed(RERANK_STREAM))?;
        let mut ranks: Vec<tei_pb::Rank> = reply
            .predictions
            .iter()
            .enumerate()
            .map(|(index, labels)| tei_pb::Rank {
                index: small(index),
                text: texts.get(index).cloned(),
                score: labels.first().map_or(0.0, |p| p.score),
            })
            .collect();
        ranks.sort_by(|a, b| b.score.total_cmp(&a.score));
        let answer =
            tei_pb::RerankResponse { ranks, metadata: Some(metadata(chars, reply.tokens, reply.timing, reply.total)) };
        Ok(timed(answer, reply.lane, reply.timing))
    }
}
