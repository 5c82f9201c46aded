//! `tei.v1.Predict`: a sequence classifier's labels, best first, for a text (`Predict`) or a
//! text or pair (`PredictPair`), one message at a time or as streams.

use std::time::Instant;

use aki_core::{ClassifierInput, EmbedError, EncodeOptions, Lane, Timing};
use aki_service::{Caller, PredictRequest};
use tonic::{Request, Response, Status, Streaming};

use super::{TeiService, encode, metadata, timed};
use crate::convert::grpc_deadline;
use crate::failure::fail;
use crate::streams::Answers;
use crate::tei_pb;

const PREDICT: &str = "/tei.v1.Predict/Predict";
const PREDICT_PAIR: &str = "/tei.v1.Predict/PredictPair";
const PREDICT_STREAM: &str = "/tei.v1.Predict/PredictStream";
const PREDICT_PAIR_STREAM: &str = "/tei.v1.Predict/PredictPairStream";

/// One input of a message, how to cut it, and whether to keep logits.
struct Asked {
    input: ClassifierInput,
    encode: EncodeOptions,
    raw_scores: bool,
}

impl From<tei_pb::PredictRequest> for Asked {
    fn from(m: tei_pb::PredictRequest) -> Self {
        let encode = encode(m.truncate, m.truncation_direction);
        Self { input: ClassifierInput::Single(m.inputs), encode, raw_scores: m.raw_scores }
    }
}

impl TryFrom<tei_pb::PredictPairRequest> for Asked {
    type Error = EmbedError;

    fn try_from(mut m: tei_pb::PredictPairRequest) -> Result<Self, EmbedError> {
        let input = match m.inputs.len() {
            1 => ClassifierInput::Single(m.inputs.remove(0)),
            2 => {
                let second = m.inputs.remove(1);
                ClassifierInput::Pair(m.inputs.remove(0), second)
            }
            n => {
                return Err(EmbedError::Validation(format!("`inputs` holds a text or a pair of texts, not {n} texts")));
            }
        };
        Ok(Self { input, encode: encode(m.truncate, m.truncation_direction), raw_scores: m.raw_scores })
    }
}

impl TeiService {
    /// One input's labels, with the lane and timing.
    async fn predict_one(
        &self,
        route: &str,
        asked: Result<Asked, EmbedError>,
        deadline: Option<Instant>,
        caller: Caller,
    ) -> Result<(tei_pb::PredictResponse, Lane, Timing), Status> {
        let asked = asked.map_err(|error| {
            self.engine.service.reject(route, &error);
            fail(route, &error)
        })?;
        let chars = asked.input.chars();
        let request = PredictRequest {
            model: None,
            inputs: vec![asked.input],
            encode: asked.encode,
            raw_scores: asked.raw_scores,
            deadline,
            caller,
        };
        let reply = self.engine.service.predict(route, request).await.map_err(Self::failed(route))?;
        let labels = reply.predictions.into_iter().next().unwrap_or_default();
        let answer = tei_pb::PredictResponse {
            predictions: labels.into_iter().map(|p| tei_pb::Prediction { score: p.score, label: p.label }).collect(),
            metadata: Some(metadata(chars, reply.tokens, reply.timing, reply.total)),
        };
        Ok((answer, reply.lane, reply.timing))
    }

    /// Each message of a stream answered in order, as one requester.
    fn predict_each<T, F>(
        &self,
        route: &'static str,
        request: Request<Streaming<T>>,
        asked: F,
    ) -> Answers<tei_pb::PredictResponse>
    where
        T: Send + 'static,
        F: Fn(T) -> Result<Asked, EmbedError> + Send + Sync + Copy + 'static,
    {
        self.each(route, request, move |service, message, deadline, caller| async move {
            service.predict_one(route, asked(message), deadline, caller).await
        })
    }
}

#[tonic::async_trait]
impl tei_pb::predict_server::Predict for TeiService {
    async fn predict(
        &self,
        request: Request<tei_pb::PredictRequest>,
    ) -> Result<Response<tei_pb::PredictResponse>, Status> {
        let (deadline, caller) = (grpc_deadline(request.metadata()), crate::service::caller_of(&request));
        let asked = Ok(Asked::from(request.into_inner()));
        let (answer, lane, timing) = self.predict_one(PREDICT, asked, deadline, caller).await?;
        Ok(timed(answer, lane, timing))
    }

    async fn predict_pair(
        &self,
        request: Request<tei_pb::PredictPairRequest>,
    ) -> Result<Response<tei_pb::PredictResponse>, Status> {
        let (deadline, caller) = (grpc_deadline(request.metadata()), crate::service::caller_of(&request));
        let asked = Asked::try_from(request.into_inner());
        let (answer, lane, timing) = self.predict_one(PREDICT_PAIR, asked, deadline, caller).await?;
        Ok(timed(answer, lane, timing))
    }

    type PredictStreamStream = Answers<tei_pb::PredictResponse>;

    async fn predict_stream(
        &self,
        request: Request<Streaming<tei_pb::PredictRequest>>,
    ) -> Result<Response<Self::PredictStreamStream>, Status> {
        Ok(Response::new(self.predict_each(PREDICT_STREAM, request, |m| Ok(Asked::from(m)))))
    }

    type PredictPairStreamStream = Answers<tei_pb::PredictResponse>;

    async fn predict_pair_stream(
        &self,
        request: Request<Streaming<tei_pb::PredictPairRequest>>,
    ) -> Result<Response<Self::PredictPairStreamStream>, Status> {
        Ok(Response::new(self.predict_each(PREDICT_PAIR_STREAM, request, Asked::try_from)))
    }
}
