//! The wire-neutral requests and replies every adapter maps its DTOs to and from.

use std::time::{Duration, Instant};

use aki_core::{ClassifierInput, EmbedOptions, EncodeOptions, Lane, ModelInfo, Priority, Result, Tenant, Timing};

use crate::lanes::Requester;
use crate::limits::Limits;

/// Who sent a request and how it asks to be scheduled, as the adapter learnt it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Caller {
    /// The tenant of the key it presented ([`EmbedService::authorize`](crate::EmbedService::authorize)).
    pub tenant: Tenant,
    /// The lane it asks for (`priority` field, `x-priority` header or metadata).
    pub priority: Priority,
    /// The stream it came on, when it is one of many on one stream.
    pub requester: Option<Requester>,
}

/// What a request embeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inputs {
    /// Texts, tokenized by the model.
    Texts(Vec<String>),
    /// Complete model inputs as token ids (special tokens included), as `/tokenize` gives them.
    TokenIds(Vec<Vec<u32>>),
}

impl Inputs {
    /// Checks what can be checked before the model is known: counts and lengths of texts, the
    /// count of token lists (their ids and lengths are checked against the model).
    pub(crate) fn check(&self, limits: &Limits) -> Result<()> {
        match self {
            Self::Texts(texts) => limits.check_texts(texts),
            // Token lists are checked against the model (vocabulary, length) once it is known.
            Self::TokenIds(lists) => limits.check(lists.len(), 0, 0),
        }
    }
}

/// One embedding request, as every adapter states it.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedRequest {
    /// The model asked for; `None` is the default model.
    pub model: Option<String>,
    /// The inputs.
    pub inputs: Inputs,
    /// Truncation, normalisation, dimensions.
    pub options: EmbedOptions,
    /// Which prompt goes before each text.
    pub prompt: PromptChoice,
    /// The client's own deadline (gRPC's `grpc-timeout`), if it sent one; the service's
    /// timeout of the request's lane caps it.
    pub deadline: Option<Instant>,
    /// Who sent it.
    pub caller: Caller,
}

/// The prompt a request asks for, as sentence-transformers' `encode` takes it: a text, or the
/// name of one of the model's prompts; neither means the model's default prompt, if it has one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PromptChoice {
    /// One of the model's named prompts (`query`, `passage`).
    pub name: Option<String>,
    /// A prompt text of the client's own.
    pub text: Option<String>,
}

/// A request to rank texts by relevance to a query with a cross-encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct RerankRequest {
    /// The model asked for; `None` is the default model.
    pub model: Option<String>,
    /// What the texts are ranked against.
    pub query: String,
    /// The candidates.
    pub texts: Vec<String>,
    /// Cut over-long pairs (longer part first) instead of refusing them, on which side.
    pub encode: EncodeOptions,
    /// Return the model's logits instead of sigmoid probabilities.
    pub raw_scores: bool,
    /// Keep only the best `top_n` (all when `None`).
    pub top_n: Option<usize>,
    /// The client's own deadline, capped like an embedding request's.
    pub deadline: Option<Instant>,
    /// Who sent it.
    pub caller: Caller,
}

/// One ranked text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranked {
    /// Its position in the request's texts.
    pub index: usize,
    /// Its relevance: sigmoid of the logit, or the logit with `raw_scores`.
    pub score: f32,
}

/// The answer to a [`RerankRequest`].
#[derive(Debug, Clone, PartialEq)]
pub struct RerankReply {
    /// The id of the model that answered.
    pub model: String,
    /// The texts, best first (ties keep the request's order).
    pub ranked: Vec<Ranked>,
    /// Tokens processed over all pairs.
    pub tokens: usize,
    /// The lane it waited in.
    pub lane: Lane,
    /// Where the time went inside the pipeline.
    pub timing: Timing,
    /// Time from the service receiving the request to the answer.
    pub total: Duration,
}

/// The answer to an [`EmbedRequest`]: one `V` per input, a dense vector by default
/// ([`EmbedService::embed`](crate::EmbedService::embed)); the non-zero `(index, value)` pairs of a
/// SPLADE vector ([`embed_sparse`](crate::EmbedService::embed_sparse)); or the vector of each
/// token ([`embed_all`](crate::EmbedService::embed_all)).
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedReply<V = Vec<f32>> {
    /// The id of the model that answered.
    pub model: String,
    /// Length of the returned vectors (the model's dimension, or the requested `dimensions`;
    /// the vocabulary for a SPLADE model; the hidden size for token vectors).
    pub dimension: usize,
    /// One answer per input, in order.
    pub vectors: Vec<V>,
    /// Tokens processed (special tokens included, after truncation).
    pub tokens: usize,
    /// The lane it waited in.
    pub lane: Lane,
    /// Where the time went inside the pipeline.
    pub timing: Timing,
    /// Time from the service receiving the request to the answer.
    pub total: Duration,
}

impl<V> EmbedReply<V> {
    /// The same reply with each answer turned by `f`.
    pub(crate) fn map<W>(self, f: impl FnMut(V) -> W) -> EmbedReply<W> {
        let Self { model, dimension, vectors, tokens, lane, timing, total } = self;
        EmbedReply { model, dimension, vectors: vectors.into_iter().map(f).collect(), tokens, lane, timing, total }
    }

    /// What the request metrics record of it: its tokens, and its lane and queue time.
    pub(crate) fn facts(&self) -> (usize, Option<(Lane, Duration)>) {
        (self.tokens, Some((self.lane, self.timing.queue)))
    }
}

/// A request to classify texts or pairs with a sequence classifier (or to score them with a
/// reranker), TEI's `predict`.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictRequest {
    /// The model asked for; `None` is the default model.
    pub model: Option<String>,
    /// The texts and pairs, answered in order.
    pub inputs: Vec<ClassifierInput>,
    /// Cut over-long inputs (a pair's longer part first) instead of refusing them.
    pub encode: EncodeOptions,
    /// The model's logits instead of probabilities.
    pub raw_scores: bool,
    /// The client's own deadline, capped like an embedding request's.
    pub deadline: Option<Instant>,
    /// Who sent it.
    pub caller: Caller,
}

/// One label's score for one input.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The label's name (`id2label`).
    pub label: String,
    /// Its probability (softmax over the labels, or sigmoid for one label or independent
    /// labels), or its logit with `raw_scores`.
    pub score: f32,
}

/// The answer to a [`PredictRequest`].
#[derive(Debug, Clone, PartialEq)]
pub struct PredictReply {
    /// The id of the model that answered.
    pub model: String,
    /// Each input's labels, best first, in input order.
    pub predictions: Vec<Vec<Prediction>>,
    /// Tokens processed over all inputs.
    pub tokens: usize,
    /// The lane it waited in.
    pub lane: Lane,
    /// Where the time went inside the pipeline.
    pub timing: Timing,
    /// Time from the service receiving the request to the answer.
    pub total: Duration,
}

/// A request for the cosine similarity of sentences to a source sentence (TEI's
/// `similarity`, the Hugging Face `sentence-similarity` task).
#[derive(Debug, Clone, PartialEq)]
pub struct SimilarityRequest {
    /// The model asked for; `None` is the default model.
    pub model: Option<String>,
    /// What the sentences are compared with.
    pub source: String,
    /// The sentences, answered in order.
    pub sentences: Vec<String>,
    /// Truncation.
    pub encode: EncodeOptions,
    /// Which prompt goes before each text.
    pub prompt: PromptChoice,
    /// The client's own deadline, capped like an embedding request's.
    pub deadline: Option<Instant>,
    /// Who sent it.
    pub caller: Caller,
}

/// The answer to a [`SimilarityRequest`].
#[derive(Debug, Clone, PartialEq)]
pub struct SimilarityReply {
    /// The cosine similarity of each sentence to the source, in order.
    pub scores: Vec<f32>,
    /// The embedding of all the texts it took.
    pub embedded: EmbedReply,
}

/// A request for the texts of token ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeRequest {
    /// The model whose tokenizer to use; `None` is the default model.
    pub model: Option<String>,
    /// One list of token ids per text.
    pub ids: Vec<Vec<u32>>,
    /// Leave out [CLS], [SEP] and friends.
    pub skip_special_tokens: bool,
    /// The client's own deadline, capped like an embedding request's.
    pub deadline: Option<Instant>,
}

/// A request for the tokens of texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizeRequest {
    /// The model whose tokenizer to use; `None` is the default model.
    pub model: Option<String>,
    /// The texts.
    pub texts: Vec<String>,
    /// Include [CLS], [SEP] and friends.
    pub add_special_tokens: bool,
    /// Which prompt goes before each text; none unless one is asked for (the model's default
    /// prompt is not added).
    pub prompt: PromptChoice,
    /// The client's own deadline, capped like an embedding request's.
    pub deadline: Option<Instant>,
}

/// Batching limits in force, reported by `/info` and `Info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchFacts {
    /// Most inputs per model call.
    pub max_batch_size: usize,
    /// Most tokens per model call.
    pub max_batch_tokens: usize,
    /// Model calls in flight at once.
    pub max_concurrent_batches: usize,
    /// Most sequences per forward pass.
    pub max_forward_batch: usize,
}

/// Facts about the server and its default model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// The default model.
    pub model: ModelInfo,
    /// Batching limits.
    pub batching: BatchFacts,
    /// Most inputs a client may send in one request.
    pub max_client_batch_size: usize,
    /// Requests served at once (`limits.max_concurrent_requests`).
    pub max_concurrent_requests: usize,
    /// Threads that tokenize a request's texts in parallel.
    pub tokenization_workers: usize,
    /// Model ids requests may name, the default first.
    pub models: Vec<String>,
    /// The server's version.
    pub version: &'static str,
}
