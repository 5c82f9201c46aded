//! The `EmbeddingProvider` port: inference only. An encoded batch goes in; pooled vectors or
//! token vectors (an embedder) or classifier scores (a cross-encoder) come out, with where the
//! time went.

use async_trait::async_trait;

use crate::{Encoding, Pooled, Predictions, RequestContext, Result, TokenVectors};

/// Runs a model on inputs that are already tokenized and checked: a backend, or a decorator
/// (batcher, result cache) wrapping another provider, shaped like tower's `Timeout<S>`.
///
/// The port is as narrow as TEI's `Backend`: tokenization is its own port
/// ([`Tokenization`](crate::Tokenization)), and the steps around inference (prompts,
/// validation, the deadline, finishing each vector) happen once, in
/// [`ModelPipeline`](crate::ModelPipeline). Facts about the model (its dimension, whether a
/// batch costs `longest x items`) are given once, with the provider, as
/// [`ModelInfo`](crate::ModelInfo).
///
/// Inputs reach a provider already checked by [`encoding::prepare`](crate::encoding::prepare):
/// 1 to `max_input_tokens` tokens, ids inside the vocabulary, as many type ids as ids. A
/// provider does not check them again.
#[async_trait]
pub trait EmbeddingProvider: Send + Sync + 'static {
    /// Pooled vectors of an embedder, one per encoding, in order, of length
    /// [`ModelInfo::dimension`](crate::ModelInfo::dimension), *not* normalised (normalisation
    /// and Matryoshka truncation are per-request, see [`vector::finish`](crate::vector::finish)).
    ///
    /// # Errors
    /// - [`EmbedError::Backend`](crate::EmbedError::Backend) when inference fails, or
    ///   [`EmbedError::Internal`](crate::EmbedError::Internal) when it panicked or the model
    ///   is not an embedder;
    /// - [`EmbedError::Overloaded`](crate::EmbedError::Overloaded),
    ///   [`EmbedError::Timeout`](crate::EmbedError::Timeout) (`context.deadline` passed
    ///   before the work ran: it is then dropped, not computed) or
    ///   [`EmbedError::Unavailable`](crate::EmbedError::Unavailable) when a decorator refuses,
    ///   expires or can no longer take the work.
    async fn embed(&self, batch: Vec<Encoding>, context: RequestContext) -> Result<Pooled>;

    /// Scores of a cross-encoder (sequence classifier): its raw logits, one list of
    /// [`ModelInfo::dimension`](crate::ModelInfo::dimension) labels per encoding, in order.
    ///
    /// # Errors
    /// As [`embed`](Self::embed), with [`EmbedError::Internal`](crate::EmbedError::Internal)
    /// when the model is not a classifier.
    async fn predict(&self, batch: Vec<Encoding>, context: RequestContext) -> Result<Predictions>;

    /// The last hidden state of every token of an embedder (before pooling, not normalised),
    /// per encoding, in order: `len x width` values each.
    ///
    /// # Errors
    /// As [`embed`](Self::embed).
    async fn token_vectors(&self, batch: Vec<Encoding>, context: RequestContext) -> Result<TokenVectors>;
}
