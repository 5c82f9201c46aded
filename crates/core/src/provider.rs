//! The `EmbeddingProvider` port: text in, vectors out, with tokenization reachable on its own.

use async_trait::async_trait;

use crate::{EmbedOptions, Embeddings, EncodeOptions, Encoding, ModelInfo, Result, Timing, Token, vector};

/// Something that turns texts into sentence vectors: a backend, or a decorator
/// (batcher, cache) wrapping another provider.
///
/// The work is split in two steps so that a batcher can count tokens before it forms a
/// batch: [`encode`](Self::encode) tokenizes, [`embed_encoded`](Self::embed_encoded) runs
/// the model on already-encoded input. [`embed`](Self::embed) does both and applies the
/// request's options.
#[async_trait]
pub trait EmbeddingProvider: Send + Sync + 'static {
    /// Facts about the served model.
    fn info(&self) -> &ModelInfo;

    /// Whether the provider can serve now.
    ///
    /// # Errors
    /// MUST return [`EmbedError::Unavailable`](crate::EmbedError::Unavailable) when it cannot
    /// (model not loaded, worker stopped) and [`EmbedError::Backend`](crate::EmbedError::Backend)
    /// when a probe inference fails.
    async fn health(&self) -> Result<()>;

    /// Tokenizes `texts` (special tokens added, truncated at the model's maximum when
    /// `options.truncate`). CPU-bound: implementations run it off the async runtime's workers.
    ///
    /// # Errors
    /// MUST return [`EmbedError::Validation`](crate::EmbedError::Validation) for an input longer
    /// than the maximum when truncation is off, and
    /// [`EmbedError::Tokenizer`](crate::EmbedError::Tokenizer) when the tokenizer fails.
    async fn encode(&self, texts: Vec<String>, options: EncodeOptions) -> Result<Vec<Encoding>>;

    /// Tokenizes `texts` for display: ids, token texts, special flags and byte offsets, with
    /// or without the special tokens. Not truncated.
    ///
    /// # Errors
    /// MUST return [`EmbedError::Tokenizer`](crate::EmbedError::Tokenizer) when the tokenizer
    /// fails.
    async fn tokenize(&self, texts: Vec<String>, add_special_tokens: bool) -> Result<Vec<Vec<Token>>>;

    /// Runs the model on encoded inputs and returns one pooled vector per input, in order,
    /// of length [`ModelInfo::dimension`], *not* normalised (normalisation and Matryoshka
    /// truncation are per-request, see [`vector::finish`]).
    ///
    /// # Errors
    /// MUST return [`EmbedError::Validation`](crate::EmbedError::Validation) for an encoding
    /// longer than [`ModelInfo::max_input_tokens`],
    /// [`EmbedError::Backend`](crate::EmbedError::Backend) when inference fails,
    /// [`EmbedError::Overloaded`](crate::EmbedError::Overloaded) or
    /// [`EmbedError::Timeout`](crate::EmbedError::Timeout) when a decorator rejects or expires
    /// the work.
    async fn embed_encoded(&self, batch: Vec<Encoding>) -> Result<Vec<Vec<f32>>>;

    /// Embeds `texts` with `options`: encode, infer, then truncate to `dimensions` and
    /// normalise. Returns one vector per text, in order, and the tokens used.
    ///
    /// # Errors
    /// [`EmbedError::Validation`](crate::EmbedError::Validation) for bad `dimensions`, and every
    /// error of [`encode`](Self::encode) and [`embed_encoded`](Self::embed_encoded).
    async fn embed(&self, texts: Vec<String>, options: EmbedOptions) -> Result<Embeddings> {
        vector::check_dimensions(&options, self.info())?;
        let started = std::time::Instant::now();
        let encodings = self.encode(texts, options.encode).await?;
        let tokenize = started.elapsed();
        let token_counts = encodings.iter().map(Encoding::len).collect();
        let pooled = self.embed_encoded(encodings).await?;
        let inference = started.elapsed() - tokenize;
        let info = self.info();
        let vectors = pooled.into_iter().map(|v| vector::finish(v, &options, info)).collect();
        Ok(Embeddings {
            vectors,
            token_counts,
            timing: Timing { tokenize, queue: std::time::Duration::ZERO, inference },
        })
    }
}
