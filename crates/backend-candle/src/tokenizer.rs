//! `HfTokenizer`: the `Tokenization` port over a Hugging Face `tokenizer.json`, run on tokio's
//! blocking pool (the `tokenizers` crate spreads a batch over rayon's threads).

use std::path::Path;
use std::sync::Arc;

use aki_core::{EmbedError, EncodeOptions, Encoding, Result, Token, Tokenization, TruncationDirection};
use async_trait::async_trait;
use tokenizers::{Tokenizer, TruncationParams, TruncationStrategy};

/// The model's `tokenizers` tokenizer in the three set-ups a request can ask for: cut at the
/// start, cut at the end, whole.
struct Tokenizers {
    keep_start: Tokenizer,
    keep_end: Tokenizer,
    whole: Tokenizer,
}

impl Tokenizers {
    fn load(path: &Path, max_tokens: usize) -> Result<Self> {
        let err = |e: tokenizers::Error| EmbedError::Load(format!("{}: {e}", path.display()));
        let mut whole = Tokenizer::from_file(path).map_err(err)?;
        // tokenizer.json files often carry their own truncation and fixed-length padding
        // (all-MiniLM-L6-v2's truncates at 128 and pads to 128): replace both.
        whole.with_padding(None);
        whole.with_truncation(None).map_err(err)?;
        let truncating = |direction| -> Result<Tokenizer> {
            let mut t = whole.clone();
            t.with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction,
            }))
            .map_err(err)?;
            Ok(t)
        };
        Ok(Self {
            keep_start: truncating(tokenizers::TruncationDirection::Right)?,
            keep_end: truncating(tokenizers::TruncationDirection::Left)?,
            whole,
        })
    }

    fn tokenize(&self, texts: Vec<String>, add_special_tokens: bool) -> Result<Vec<Vec<Token>>> {
        let encoded =
            self.whole.encode_batch(texts, add_special_tokens).map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        Ok(encoded
            .iter()
            .map(|e| {
                let parts =
                    e.get_ids().iter().zip(e.get_tokens()).zip(e.get_special_tokens_mask()).zip(e.get_offsets());
                parts
                    .map(|(((&id, text), &special), &(start, stop))| Token {
                        id,
                        text: text.clone(),
                        special: special == 1,
                        start,
                        stop,
                    })
                    .collect()
            })
            .collect())
    }

    fn encode(&self, texts: Vec<String>, options: EncodeOptions) -> Result<Vec<Encoding>> {
        let tokenizer = self.pick(options);
        let encoded = tokenizer.encode_batch(texts, true).map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        Ok(Self::encodings(encoded))
    }

    /// The texts of token-id lists.
    fn decode(&self, ids: Vec<Vec<u32>>, skip_special_tokens: bool) -> Result<Vec<String>> {
        let ids: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
        self.whole.decode_batch(&ids, skip_special_tokens).map_err(|e| EmbedError::Tokenizer(e.to_string()))
    }

    /// Pairs of texts as one input each, cut longest part first when truncating.
    fn encode_pairs(&self, pairs: Vec<(String, String)>, options: EncodeOptions) -> Result<Vec<Encoding>> {
        let tokenizer = self.pick(options);
        let pairs: Vec<tokenizers::EncodeInput> = pairs.into_iter().map(Into::into).collect();
        let encoded = tokenizer.encode_batch(pairs, true).map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        Ok(Self::encodings(encoded))
    }

    fn pick(&self, options: EncodeOptions) -> &Tokenizer {
        match (options.truncate, options.direction) {
            (false, _) => &self.whole,
            (true, TruncationDirection::Right) => &self.keep_start,
            (true, TruncationDirection::Left) => &self.keep_end,
        }
    }

    /// Encodings from the tokenizer's output, unchecked (the pipeline checks them once).
    fn encodings(encoded: Vec<tokenizers::Encoding>) -> Vec<Encoding> {
        encoded
            .into_iter()
            .map(|e| Encoding { ids: e.get_ids().to_vec(), type_ids: e.get_type_ids().to_vec() })
            .collect()
    }
}

/// A model's tokenizer (`tokenizer.json`), cheap to clone; each call runs on tokio's blocking
/// pool, off the async runtime's workers.
#[derive(Clone)]
pub struct HfTokenizer(Arc<Tokenizers>);

impl HfTokenizer {
    /// Reads `tokenizer.json` at `path`, cutting at `max_tokens` when a request truncates (the
    /// file's own truncation and padding are replaced).
    ///
    /// # Errors
    /// [`EmbedError::Load`] when the file cannot be read or set up.
    pub fn load(path: &Path, max_tokens: usize) -> Result<Self> {
        Tokenizers::load(path, max_tokens).map(|t| Self(Arc::new(t)))
    }

    /// Runs `work` on the tokenizer on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Tokenizers) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let tokenizers = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || work(&tokenizers))
            .await
            .map_err(|e| EmbedError::Internal(format!("tokenization task failed: {e}")))?
    }
}

#[async_trait]
impl Tokenization for HfTokenizer {
    async fn encode(&self, texts: Vec<String>, options: EncodeOptions) -> Result<Vec<Encoding>> {
        self.blocking(move |t| t.encode(texts, options)).await
    }

    async fn encode_pairs(&self, pairs: Vec<(String, String)>, options: EncodeOptions) -> Result<Vec<Encoding>> {
        self.blocking(move |t| t.encode_pairs(pairs, options)).await
    }

    async fn tokenize(&self, texts: Vec<String>, add_special_tokens: bool) -> Result<Vec<Vec<Token>>> {
        self.blocking(move |t| t.tokenize(texts, add_special_tokens)).await
    }

    async fn decode(&self, ids: Vec<Vec<u32>>, skip_special_tokens: bool) -> Result<Vec<String>> {
        self.blocking(move |t| t.decode(ids, skip_special_tokens)).await
    }
}
