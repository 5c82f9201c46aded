//! The `EmbeddingProvider` port and the one embedding pipeline built on it: inputs (text or
//! token ids) to encodings, inference, then the request's options applied to each vector.

use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::{
    EmbedError, EmbedOptions, Embeddings, EncodeOptions, Encoding, ModelInfo, ModelTask, Pooled, RequestContext,
    Result, Token, TruncationDirection, vector,
};

/// Something that turns texts into sentence vectors: a backend, or a decorator
/// (batcher, cache) wrapping another provider.
///
/// The work is split in two steps so that a batcher can count tokens before it forms a
/// batch: [`encode`](Self::encode) tokenizes, [`embed_encoded`](Self::embed_encoded) runs
/// the model on already-encoded input. [`embed`](Self::embed) and
/// [`embed_tokens`](Self::embed_tokens) are the whole pipeline, written once here: decorators
/// implement the two steps and never re-implement the pipeline.
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

    /// Tokenizes `(query, text)` pairs for a cross-encoder: both parts in one input with the
    /// model's separator and segment ids, the longer part cut first when `options.truncate`.
    /// Providers of embedders keep this default, which refuses.
    ///
    /// # Errors
    /// [`EmbedError::Validation`](crate::EmbedError::Validation) when the model does not rerank,
    /// and the errors of [`encode`](Self::encode).
    async fn encode_pairs(&self, query: String, texts: Vec<String>, options: EncodeOptions) -> Result<Vec<Encoding>> {
        let _ = (query, texts, options);
        Err(wrong_task(self.info(), ModelTask::Rerank))
    }

    /// Tokenizes `texts` for display: ids, token texts, special flags and byte offsets, with
    /// or without the special tokens. Not truncated.
    ///
    /// # Errors
    /// MUST return [`EmbedError::Tokenizer`](crate::EmbedError::Tokenizer) when the tokenizer
    /// fails.
    async fn tokenize(&self, texts: Vec<String>, add_special_tokens: bool) -> Result<Vec<Vec<Token>>>;

    /// Runs the model on encoded inputs and returns one pooled vector per input, in order,
    /// of length [`ModelInfo::dimension`], *not* normalised (normalisation and Matryoshka
    /// truncation are per-request, see [`vector::finish`]), with the time spent queued and
    /// computing. Work still queued when `context.deadline` passes is dropped.
    ///
    /// # Errors
    /// MUST return [`EmbedError::Validation`](crate::EmbedError::Validation) for an empty
    /// encoding, one longer than [`ModelInfo::max_input_tokens`] or one with an id outside the
    /// vocabulary; [`EmbedError::Backend`](crate::EmbedError::Backend) when inference fails;
    /// [`EmbedError::Overloaded`](crate::EmbedError::Overloaded) or
    /// [`EmbedError::Timeout`](crate::EmbedError::Timeout) when a decorator rejects or expires
    /// the work.
    async fn embed_encoded(&self, batch: Vec<Encoding>, context: RequestContext) -> Result<Pooled>;

    /// Embeds `texts` with `options`: encode, infer, then truncate to `dimensions` and
    /// normalise. Returns one vector per text, in order, the tokens used and the timing.
    ///
    /// # Errors
    /// [`EmbedError::Validation`](crate::EmbedError::Validation) for bad `dimensions`, and every
    /// error of [`encode`](Self::encode) and [`embed_encoded`](Self::embed_encoded).
    async fn embed(&self, texts: Vec<String>, options: EmbedOptions, context: RequestContext) -> Result<Embeddings> {
        check_task(self.info(), ModelTask::Embed)?;
        vector::check_dimensions(&options, self.info())?;
        let started = Instant::now();
        let encodings = self.encode(texts, options.encode).await?;
        infer_and_finish(self, encodings, &options, context, started.elapsed()).await
    }

    /// Embeds inputs given as token ids (complete model inputs, special tokens included, as
    /// [`tokenize`](Self::tokenize) returns them), through the same inference and finishing as
    /// [`embed`](Self::embed). Each list is checked before anything is queued (see
    /// [`token_encodings`]).
    ///
    /// # Errors
    /// [`EmbedError::Validation`](crate::EmbedError::Validation) for bad `dimensions` or a bad
    /// list, and every error of [`embed_encoded`](Self::embed_encoded).
    async fn embed_tokens(
        &self,
        lists: Vec<Vec<u32>>,
        options: EmbedOptions,
        context: RequestContext,
    ) -> Result<Embeddings> {
        check_task(self.info(), ModelTask::Embed)?;
        vector::check_dimensions(&options, self.info())?;
        let encodings = token_encodings(lists, options.encode, self.info())?;
        infer_and_finish(self, encodings, &options, context, Duration::ZERO).await
    }

    /// Scores each of `texts` against `query` with a cross-encoder: encode the pairs, then the
    /// same inference (batching, cache, deadline) as embeddings. The "vectors" returned are the
    /// classifier's raw logits, one per label, in input order; token counts are per pair.
    ///
    /// # Errors
    /// [`EmbedError::Validation`](crate::EmbedError::Validation) when the model does not rerank,
    /// and every error of [`encode_pairs`](Self::encode_pairs) and
    /// [`embed_encoded`](Self::embed_encoded).
    async fn score_pairs(
        &self,
        query: String,
        texts: Vec<String>,
        options: EncodeOptions,
        context: RequestContext,
    ) -> Result<Embeddings> {
        check_task(self.info(), ModelTask::Rerank)?;
        let started = Instant::now();
        let encodings = self.encode_pairs(query, texts, options).await?;
        let tokenize = started.elapsed();
        let token_counts = encodings.iter().map(Encoding::len).collect();
        let pooled = self.embed_encoded(encodings, context).await?;
        Ok(Embeddings { vectors: pooled.vectors, token_counts, timing: crate::Timing { tokenize, ..pooled.timing } })
    }
}

/// Refuses work of the other task: embeddings from a reranker or scores from an embedder.
///
/// # Errors
/// [`EmbedError::Validation`] saying what the model is and which routes serve it.
pub fn check_task(info: &ModelInfo, task: ModelTask) -> Result<()> {
    if info.task == task { Ok(()) } else { Err(wrong_task(info, task)) }
}

fn wrong_task(info: &ModelInfo, wanted: ModelTask) -> EmbedError {
    let (is, use_instead) = match info.task {
        ModelTask::Embed => ("an embedding model", "the embedding routes"),
        ModelTask::Rerank => ("a reranker (cross-encoder)", "`/rerank`"),
    };
    EmbedError::Validation(format!(
        "model `{}` is {is} and cannot {}; use {use_instead}",
        info.model_id,
        wanted.as_str()
    ))
}

/// Inference on `encodings`, then each vector finished with `options`.
async fn infer_and_finish<P: EmbeddingProvider + ?Sized>(
    provider: &P,
    encodings: Vec<Encoding>,
    options: &EmbedOptions,
    context: RequestContext,
    tokenize: Duration,
) -> Result<Embeddings> {
    let token_counts = encodings.iter().map(Encoding::len).collect();
    let pooled = provider.embed_encoded(encodings, context).await?;
    let info = provider.info();
    let vectors = pooled.vectors.into_iter().map(|v| vector::finish(v, options, info)).collect();
    Ok(Embeddings { vectors, token_counts, timing: crate::Timing { tokenize, ..pooled.timing } })
}

/// Token-id inputs as encodings, each checked on its own so a bad list is refused before it can
/// share a batch with anyone: not empty, every id inside the vocabulary, and no longer than
/// the model's maximum, unless `options.truncate`, which keeps the start (or, with
/// [`TruncationDirection::Left`], the end).
///
/// # Errors
/// [`EmbedError::Validation`] naming the first bad list and why.
pub fn token_encodings(lists: Vec<Vec<u32>>, options: EncodeOptions, info: &ModelInfo) -> Result<Vec<Encoding>> {
    let max = info.max_input_tokens;
    lists
        .into_iter()
        .enumerate()
        .map(|(i, mut ids)| {
            if ids.is_empty() {
                return Err(EmbedError::Validation(format!("input {i} holds no token ids")));
            }
            if let Some(id) = ids.iter().find(|&&id| id as usize >= info.vocab_size) {
                return Err(EmbedError::Validation(format!(
                    "input {i}: token id {id} is outside the vocabulary of {} tokens",
                    info.vocab_size
                )));
            }
            if ids.len() > max {
                if !options.truncate {
                    return Err(EmbedError::Validation(format!(
                        "input {i} has {} tokens, more than the model's maximum of {max}; \
                         shorten it or set `truncate` to true",
                        ids.len()
                    )));
                }
                match options.direction {
                    TruncationDirection::Right => ids.truncate(max),
                    TruncationDirection::Left => {
                        ids.drain(..ids.len() - max);
                    }
                }
            }
            Ok(Encoding { type_ids: vec![0; ids.len()], ids })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Pooling;

    fn info() -> ModelInfo {
        ModelInfo {
            model_id: "m".into(),
            dimension: 4,
            max_input_tokens: 4,
            vocab_size: 100,
            pooling: Pooling::Mean,
            normalize_default: true,
            device: "cpu".into(),
            dtype: "f32".into(),
            is_padded: false,
            engine: "test".into(),
            ..ModelInfo::default()
        }
    }

    #[test]
    fn token_lists_are_checked_one_by_one() {
        let strict = EncodeOptions { truncate: false, ..EncodeOptions::default() };
        let ok = token_encodings(vec![vec![1, 2, 3]], strict, &info()).expect("valid");
        assert_eq!(ok, vec![Encoding { ids: vec![1, 2, 3], type_ids: vec![0, 0, 0] }]);
        let empty = token_encodings(vec![vec![1], vec![]], strict, &info()).expect_err("empty");
        assert!(empty.to_string().contains("input 1 holds no token ids"), "{empty}");
        let outside = token_encodings(vec![vec![1, 100]], strict, &info()).expect_err("outside");
        assert!(outside.to_string().contains("token id 100"), "{outside}");
        let long = token_encodings(vec![vec![1; 5]], strict, &info()).expect_err("long");
        assert!(long.to_string().contains("5 tokens"), "{long}");
    }

    #[test]
    fn over_long_token_lists_are_cut_on_the_asked_side() {
        let right = EncodeOptions::default();
        let left = EncodeOptions { direction: TruncationDirection::Left, ..right };
        let ids = vec![1, 2, 3, 4, 5, 6];
        assert_eq!(token_encodings(vec![ids.clone()], right, &info()).expect("cut")[0].ids, [1, 2, 3, 4]);
        assert_eq!(token_encodings(vec![ids], left, &info()).expect("cut")[0].ids, [3, 4, 5, 6]);
    }
}
