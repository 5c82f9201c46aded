//! `tei.v1.Tokenize`: a text's tokens with their byte offsets (`Tokenize`) and the text of
//! token ids (`Decode`), one message at a time or as streams.

use aki_core::Token;
use aki_service::{DecodeRequest, PromptChoice, TokenizeRequest};
use tonic::{Request, Response, Status, Streaming};

use super::{TeiService, small};
use crate::convert::grpc_deadline;
use crate::streams::{Answers, answer_each};
use crate::tei_pb;

const TOKENIZE: &str = "/tei.v1.Tokenize/Tokenize";
const TOKENIZE_STREAM: &str = "/tei.v1.Tokenize/TokenizeStream";
const DECODE: &str = "/tei.v1.Tokenize/Decode";
const DECODE_STREAM: &str = "/tei.v1.Tokenize/DecodeStream";

/// A token as TEI sends it: special tokens carry no offsets.
fn simple(t: Token) -> tei_pb::SimpleToken {
    let (start, stop) = if t.special { (None, None) } else { (Some(small(t.start)), Some(small(t.stop))) };
    tei_pb::SimpleToken { id: t.id, text: t.text, special: t.special, start, stop }
}

impl TeiService {
    async fn tokenize_one(
        &self,
        route: &str,
        m: tei_pb::EncodeRequest,
        deadline: Option<std::time::Instant>,
    ) -> Result<tei_pb::EncodeResponse, Status> {
        let request = TokenizeRequest {
            model: None,
            texts: vec![m.inputs],
            add_special_tokens: m.add_special_tokens,
            prompt: PromptChoice { name: m.prompt_name, text: None },
            deadline,
        };
        let tokens = self.engine.service.tokenize(route, request).await.map_err(Self::failed(route))?;
        Ok(tei_pb::EncodeResponse { tokens: tokens.into_iter().flatten().map(simple).collect() })
    }

    async fn decode_one(
        &self,
        route: &str,
        m: tei_pb::DecodeRequest,
        deadline: Option<std::time::Instant>,
    ) -> Result<tei_pb::DecodeResponse, Status> {
        let request =
            DecodeRequest { model: None, ids: vec![m.ids], skip_special_tokens: m.skip_special_tokens, deadline };
        let texts = self.engine.service.decode(route, request).await.map_err(Self::failed(route))?;
        Ok(tei_pb::DecodeResponse { text: texts.into_iter().next().unwrap_or_default() })
    }
}

#[tonic::async_trait]
impl tei_pb::tokenize_server::Tokenize for TeiService {
    async fn tokenize(
        &self,
        request: Request<tei_pb::EncodeRequest>,
    ) -> Result<Response<tei_pb::EncodeResponse>, Status> {
        let deadline = grpc_deadline(request.metadata());
        Ok(Response::new(self.tokenize_one(TOKENIZE, request.into_inner(), deadline).await?))
    }

    type TokenizeStreamStream = Answers<tei_pb::EncodeResponse>;

    async fn tokenize_stream(
        &self,
        request: Request<Streaming<tei_pb::EncodeRequest>>,
    ) -> Result<Response<Self::TokenizeStreamStream>, Status> {
        let (deadline, service) = (grpc_deadline(request.metadata()), self.clone());
        Ok(Response::new(answer_each(TOKENIZE_STREAM, request.into_inner(), self.idle(), move |m| {
            let service = service.clone();
            async move { service.tokenize_one(TOKENIZE_STREAM, m, deadline).await }
        })))
    }

    async fn decode(
        &self,
        request: Request<tei_pb::DecodeRequest>,
    ) -> Result<Response<tei_pb::DecodeResponse>, Status> {
        let deadline = grpc_deadline(request.metadata());
        Ok(Response::new(self.decode_one(DECODE, request.into_inner(), deadline).await?))
    }

    type DecodeStreamStream = Answers<tei_pb::DecodeResponse>;

    async fn decode_stream(
        &self,
        request: Request<Streaming<tei_pb::DecodeRequest>>,
    ) -> Result<Response<Self::DecodeStreamStream>, Status> {
        let (deadline, service) = (grpc_deadline(request.metadata()), self.clone());
        Ok(Response::new(answer_each(DECODE_STREAM, request.into_inner(), self.idle(), move |m| {
            let service = service.clone();
            async move { service.decode_one(DECODE_STREAM, m, deadline).await }
        })))
    }
}
