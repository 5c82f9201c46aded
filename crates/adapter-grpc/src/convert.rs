//! Protobuf messages to and from the service's requests and replies, by hand, with the wire
//! defaults of `embed.proto`.

use std::time::{Duration, Instant};

use aki_core::quantize::{OutputType, Quantized};
use aki_core::{EmbedError, EmbedOptions, EncodeOptions, Token, TruncationDirection};
use aki_service::{
    Caller, EmbedReply, EmbedRequest, Inputs, PromptChoice, RerankReply, RerankRequest, ServerInfo, TokenizeRequest,
};
use tonic::metadata::MetadataMap;

use crate::pb;

fn small(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The service request of an `EmbedRequest` message, with the call's deadline and caller.
///
/// # Errors
/// [`EmbedError::Validation`] when the message holds both texts and token ids.
pub fn embed_request(
    message: pb::EmbedRequest,
    deadline: Option<Instant>,
    caller: Caller,
) -> Result<EmbedRequest, EmbedError> {
    let inputs = match (message.texts.is_empty(), message.token_ids.is_empty()) {
        (false, false) => {
            return Err(EmbedError::Validation("send `texts` or `token_ids`, not both".into()));
        }
        (true, false) => Inputs::TokenIds(message.token_ids.into_iter().map(|list| list.ids).collect()),
        _ => Inputs::Texts(message.texts),
    };
    Ok(EmbedRequest {
        model: message.model,
        inputs,
        options: EmbedOptions {
            normalize: message.normalize,
            encode: EncodeOptions { truncate: message.truncate.unwrap_or(true), direction: TruncationDirection::Right },
            dimensions: message.dimensions.map(|d| d as usize),
            ..EmbedOptions::default()
        },
        prompt: PromptChoice { name: message.prompt_name, text: message.prompt },
        deadline,
        caller,
    })
}

/// The service request of a `RerankRequest` message.
pub fn rerank_request(message: pb::RerankRequest, deadline: Option<Instant>, caller: Caller) -> RerankRequest {
    RerankRequest {
        model: message.model,
        query: message.query,
        texts: message.texts,
        encode: EncodeOptions { truncate: message.truncate.unwrap_or(true), direction: TruncationDirection::Right },
        raw_scores: message.raw_scores,
        top_n: message.top_n.map(|n| n as usize),
        deadline,
        caller,
    }
}

/// The response metadata of an answered call: the lane it waited in (`x-lane`) and its queue and
/// inference times in milliseconds (`x-queue-time`, `x-inference-time`), as the REST timing
/// headers name them.
pub fn timing_metadata(lane: aki_core::Lane, timing: aki_core::Timing) -> MetadataMap {
    let mut metadata = MetadataMap::new();
    metadata.insert("x-lane", tonic::metadata::MetadataValue::from_static(lane.as_str()));
    for (name, value) in [("x-queue-time", timing.queue), ("x-inference-time", timing.inference)] {
        if let Ok(value) = value.as_millis().to_string().parse() {
            metadata.insert(name, value);
        }
    }
    metadata
}

/// The `RerankResponse` message of a reply.
pub fn rerank_response(reply: RerankReply) -> pb::RerankResponse {
    let tokens = small(reply.tokens);
    pb::RerankResponse {
        ranks: reply.ranked.into_iter().map(|r| pb::Rank { index: small(r.index), score: r.score }).collect(),
        usage: Some(pb::Usage { prompt_tokens: tokens, total_tokens: tokens }),
        model: reply.model,
    }
}

/// The `EmbedResponse` message of a reply.
pub fn embed_response(reply: EmbedReply<Quantized>) -> pb::EmbedResponse {
    let tokens = small(reply.tokens);
    let signed = |v: Option<Vec<i8>>| v.unwrap_or_default().into_iter().map(|b| b as u8).collect();
    let embedding = |q: Quantized| pb::Embedding {
        values: q.float.unwrap_or_default(),
        int8: signed(q.int8),
        uint8: q.uint8.unwrap_or_default(),
        binary: signed(q.binary),
        ubinary: q.ubinary.unwrap_or_default(),
    };
    pb::EmbedResponse {
        embeddings: reply.vectors.into_iter().map(embedding).collect(),
        usage: Some(pb::Usage { prompt_tokens: tokens, total_tokens: tokens }),
        model: reply.model,
        error: None,
    }
}

/// The types a message asks its vectors in: the floats, and each of its `embedding_types`.
///
/// # Errors
/// [`EmbedError::Validation`] for a value that is not an `EmbeddingType`.
pub fn embedding_types(message: &pb::EmbedRequest) -> Result<Vec<OutputType>, EmbedError> {
    let mut types = vec![OutputType::Float];
    for &value in &message.embedding_types {
        types.push(match pb::EmbeddingType::try_from(value) {
            Ok(pb::EmbeddingType::Float) => OutputType::Float,
            Ok(pb::EmbeddingType::Int8) => OutputType::Int8,
            Ok(pb::EmbeddingType::Uint8) => OutputType::Uint8,
            Ok(pb::EmbeddingType::Binary) => OutputType::Binary,
            Ok(pb::EmbeddingType::Ubinary) => OutputType::Ubinary,
            Err(_) => return Err(EmbedError::Validation(format!("{value} is not an EmbeddingType"))),
        });
    }
    types.sort();
    types.dedup();
    Ok(types)
}

/// The service request of a `TokenizeRequest` message.
pub fn tokenize_request(message: pb::TokenizeRequest, deadline: Option<Instant>) -> TokenizeRequest {
    TokenizeRequest {
        model: None,
        texts: message.texts,
        add_special_tokens: message.add_special_tokens.unwrap_or(true),
        prompt: PromptChoice::default(),
        deadline,
    }
}

/// The `TokenizeResponse` message of each text's tokens.
pub fn tokenize_response(texts: Vec<Vec<Token>>) -> pb::TokenizeResponse {
    let token =
        |t: Token| pb::Token { id: t.id, text: t.text, special: t.special, start: small(t.start), stop: small(t.stop) };
    pb::TokenizeResponse {
        texts: texts
            .into_iter()
            .map(|tokens| pb::TokenList { tokens: tokens.into_iter().map(token).collect() })
            .collect(),
    }
}

/// The `InfoResponse` message of the server's facts.
pub fn info_response(info: ServerInfo) -> pb::InfoResponse {
    let model = info.model;
    pb::InfoResponse {
        model_id: model.model_id,
        dimension: small(model.dimension),
        max_input_tokens: small(model.max_input_tokens),
        dtype: model.dtype,
        device: model.device,
        pooling: model.pooling.as_str().to_string(),
        normalize: model.normalize_default,
        max_batch_size: small(info.batching.max_batch_size),
        max_batch_tokens: small(info.batching.max_batch_tokens),
        max_concurrent_batches: small(info.batching.max_concurrent_batches),
        max_forward_batch: small(info.batching.max_forward_batch),
        max_client_batch_size: small(info.max_client_batch_size),
        models: info.models,
        version: info.version.to_string(),
        architecture: model.architecture,
        task: model.task.as_str().to_string(),
        engine: model.engine,
        prompts: model.prompts.named.into_iter().collect(),
        default_prompt_name: model.prompts.default_name,
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
