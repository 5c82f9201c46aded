//! `EmbedderService`: the `aki.embed.v1.Embedder` methods on the `EmbeddingProvider` port.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aki_core::{EmbedError, EmbedOptions, EncodeOptions, TruncationDirection};
use aki_wiring::Engine;
use futures_util::{Stream, StreamExt};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

use crate::pb;
use crate::status::to_status;

/// Requests of one stream in flight at once; they join the shared batches and are answered in
/// order.
const STREAM_CONCURRENCY: usize = 64;

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

    fn check(&self, texts: &[String]) -> Result<(), Status> {
        if texts.is_empty() {
            return Err(Status::invalid_argument("`texts` is empty"));
        }
        let longest = texts.iter().map(|t| t.chars().count()).max().unwrap_or(0);
        self.engine.config.limits.check(texts.len(), longest).map_err(|e| to_status(&e))
    }

    async fn embed_one(
        &self,
        request: pb::EmbedRequest,
        deadline: Option<Instant>,
    ) -> Result<pb::EmbedResponse, Status> {
        self.check(&request.texts)?;
        let timeout = Duration::from_millis(self.engine.config.limits.request_timeout_ms);
        let own = Instant::now() + timeout;
        let deadline = deadline.map_or(own, |d| d.min(own));
        let options = EmbedOptions {
            normalize: request.normalize,
            encode: EncodeOptions { truncate: request.truncate.unwrap_or(true), direction: TruncationDirection::Right },
            dimensions: request.dimensions.map(|d| d as usize),
            deadline: Some(deadline),
        };
        let work = async {
            let provider = self.engine.model(request.model.as_deref()).await?;
            let out = provider.embed(request.texts, options).await?;
            Ok::<_, EmbedError>((provider, out))
        };
        let (provider, out) = tokio::time::timeout_at(deadline.into(), work)
            .await
            .unwrap_or(Err(EmbedError::Timeout))
            .map_err(|e| to_status(&e))?;
        self.engine.metrics.tokens(out.tokens());
        let tokens = u32::try_from(out.tokens()).unwrap_or(u32::MAX);
        Ok(pb::EmbedResponse {
            embeddings: out.vectors.into_iter().map(|values| pb::Embedding { values }).collect(),
            usage: Some(pb::Usage { prompt_tokens: tokens, total_tokens: tokens }),
            model: provider.info().model_id.clone(),
        })
    }
}

/// The client's deadline from its `grpc-timeout` header (`<digits><H|M|S|m|u|n>`). tonic's
/// transport enforces the same header by dropping the call (answering CANCELLED, "Timeout
/// expired"); passing the deadline on as well lets the batcher drop the queued work and gives
/// DEADLINE_EXCEEDED when the service notices first.
pub fn grpc_deadline(metadata: &MetadataMap) -> Option<Instant> {
    let value = metadata.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    let duration = match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    };
    Instant::now().checked_add(duration)
}

type EmbedStream = Pin<Box<dyn Stream<Item = Result<pb::EmbedResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::embedder_server::Embedder for EmbedderService {
    async fn embed(&self, request: Request<pb::EmbedRequest>) -> Result<Response<pb::EmbedResponse>, Status> {
        let deadline = grpc_deadline(request.metadata());
        self.embed_one(request.into_inner(), deadline).await.map(Response::new)
    }

    type EmbedStreamStream = EmbedStream;

    async fn embed_stream(
        &self,
        request: Request<Streaming<pb::EmbedRequest>>,
    ) -> Result<Response<Self::EmbedStreamStream>, Status> {
        let service = self.clone();
        let answers = request
            .into_inner()
            .map(move |message| {
                let service = service.clone();
                async move { service.embed_one(message?, None).await }
            })
            .buffered(STREAM_CONCURRENCY);
        Ok(Response::new(Box::pin(answers)))
    }

    async fn info(&self, _request: Request<pb::InfoRequest>) -> Result<Response<pb::InfoResponse>, Status> {
        let model = self.engine.model(None).await.map_err(|e| to_status(&e))?;
        let info = model.info();
        let config = &self.engine.config;
        let small = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(Response::new(pb::InfoResponse {
            model_id: info.model_id.clone(),
            dimension: small(info.dimension),
            max_input_tokens: small(info.max_input_tokens),
            dtype: info.dtype.clone(),
            device: info.device.clone(),
            pooling: format!("{:?}", info.pooling).to_lowercase(),
            normalize: info.normalize_default,
            max_batch_size: small(config.batching.max_batch_size),
            max_batch_tokens: small(config.batching.max_batch_tokens),
            max_client_batch_size: small(config.limits.max_inputs),
            models: self.engine.allowed_models(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }))
    }

    async fn tokenize(&self, request: Request<pb::TokenizeRequest>) -> Result<Response<pb::TokenizeResponse>, Status> {
        let request = request.into_inner();
        self.check(&request.texts)?;
        let model = self.engine.model(None).await.map_err(|e| to_status(&e))?;
        let tokens = model
            .tokenize(request.texts, request.add_special_tokens.unwrap_or(true))
            .await
            .map_err(|e| to_status(&e))?;
        let small = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(Response::new(pb::TokenizeResponse {
            texts: tokens
                .into_iter()
                .map(|tokens| pb::TokenList {
                    tokens: tokens
                        .into_iter()
                        .map(|t| pb::Token {
                            id: t.id,
                            text: t.text,
                            special: t.special,
                            start: small(t.start),
                            stop: small(t.stop),
                        })
                        .collect(),
                })
                .collect(),
        }))
    }
}
