//! The `Tokenization` port: texts to model inputs, and tokens for display.

use async_trait::async_trait;

use crate::{EncodeOptions, Encoding, Result, Token};

/// A model's tokenizer. CPU-bound: implementations run it off the async runtime's workers.
///
/// It only tokenizes: whether an encoding fits the model is decided afterwards, once, by
/// [`encoding::prepare`](crate::encoding::prepare).
#[async_trait]
pub trait Tokenization: Send + Sync + 'static {
    /// Tokenizes `texts` with the special tokens, cut at the model's maximum (on the side
    /// `options.direction` says) when `options.truncate`, uncut otherwise.
    ///
    /// # Errors
    /// MUST return [`EmbedError::Tokenizer`](crate::EmbedError::Tokenizer) when the tokenizer
    /// fails.
    async fn encode(&self, texts: Vec<String>, options: EncodeOptions) -> Result<Vec<Encoding>>;

    /// Tokenizes pairs of texts for a sequence classifier (a cross-encoder's query and text,
    /// NLI's premise and hypothesis): both parts in one input with the model's separator and
    /// segment ids, the longer part cut first when `options.truncate`.
    ///
    /// # Errors
    /// As [`encode`](Self::encode).
    async fn encode_pairs(&self, pairs: Vec<(String, String)>, options: EncodeOptions) -> Result<Vec<Encoding>>;

    /// Tokenizes `texts` for display: ids, token texts, special flags and byte offsets, with or
    /// without the special tokens. Not truncated.
    ///
    /// # Errors
    /// As [`encode`](Self::encode).
    async fn tokenize(&self, texts: Vec<String>, add_special_tokens: bool) -> Result<Vec<Vec<Token>>>;

    /// The text of each list of token ids, without the special tokens when
    /// `skip_special_tokens`.
    ///
    /// # Errors
    /// As [`encode`](Self::encode).
    async fn decode(&self, ids: Vec<Vec<u32>>, skip_special_tokens: bool) -> Result<Vec<String>>;
}
