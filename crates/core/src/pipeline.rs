//! `ModelPipeline`: the one path of a request through a model, read top to bottom: task,
//! prompt, tokenize and check the inputs once ([`Prepared`]: the request's cost is known here,
//! before any inference), infer (through whatever wraps the inference side: result cache,
//! batcher), then finish each vector for the request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{
    ClassifierInput, EmbedError, EmbedOptions, EmbeddingProvider, Embeddings, EncodeOptions, Encoding, LongInputs,
    ModelInfo, ModelTask, RequestContext, Result, Scores, Timing, Token, TokenEmbeddings, Tokenization, encoding,
    vector, windows,
};

/// Inputs tokenized and checked against the model, not yet inferred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// One model input per text (or pair), or per window of a long text.
    pub encodings: Vec<Encoding>,
    /// With [`LongInputs::Windows`]: how many of `encodings` each text became, in order (empty:
    /// one each).
    pub windows: Vec<usize>,
    /// The time tokenizing took.
    pub tokenize: Duration,
}

impl Prepared {
    /// Tokens of all the inputs together.
    pub fn tokens(&self) -> usize {
        self.encodings.iter().map(Encoding::len).sum()
    }
}

/// A served model: its facts, its tokenizer and its inference side, joined the way TEI's
/// `Infer` joins tokenization and the queue. Cheap to share behind an `Arc`; one per model.
#[derive(Clone)]
pub struct ModelPipeline {
    info: ModelInfo,
    tokenizer: Arc<dyn Tokenization>,
    inference: Arc<dyn EmbeddingProvider>,
    /// The pooled vectors of the calibration texts, once a request needed them
    /// (`calibrate.rs`).
    pub(crate) calibration: Arc<std::sync::OnceLock<Vec<Vec<f32>>>>,
}

impl ModelPipeline {
    /// The pipeline of the model `info` describes, tokenizing with `tokenizer` and inferring
    /// with `inference` (a backend, or a backend wrapped in a batcher and a cache).
    pub fn new(info: ModelInfo, tokenizer: Arc<dyn Tokenization>, inference: Arc<dyn EmbeddingProvider>) -> Self {
        Self { info, tokenizer, inference, calibration: Arc::default() }
    }

    /// The same model with another inference side (the backend wrapped in decorators).
    #[must_use]
    pub fn with_inference(&self, inference: Arc<dyn EmbeddingProvider>) -> Self {
        let calibration = Arc::default();
        Self { info: self.info.clone(), tokenizer: Arc::clone(&self.tokenizer), inference, calibration }
    }

    /// Facts about the model.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Its inference side, for wrapping in decorators (see [`with_inference`](Self::with_inference)).
    pub fn inference(&self) -> &Arc<dyn EmbeddingProvider> {
        &self.inference
    }

    /// `texts` with the prompt a request asks for before each: its own `text`, else the model's
    /// prompt `name`, else the model's default prompt, else unchanged.
    ///
    /// # Errors
    /// [`EmbedError::Validation`] for both a text and a name, or a name the model lacks.
    pub fn prompted(&self, text: Option<&str>, name: Option<&str>, texts: Vec<String>) -> Result<Vec<String>> {
        match self.info.prompts.resolve(text, name)? {
            Some(prompt) if !prompt.is_empty() => Ok(texts.into_iter().map(|t| format!("{prompt}{t}")).collect()),
            _ => Ok(texts),
        }
    }

    /// Tokenizes `texts` and checks them against the model (see [`encoding::prepare`]).
    ///
    /// # Errors
    /// [`EmbedError::Validation`] for an input the model cannot take, and the tokenizer's
    /// errors.
    pub async fn encode(&self, texts: Vec<String>, options: EncodeOptions) -> Result<Vec<Encoding>> {
        let encodings = self.tokenizer.encode(texts, options).await?;
        encoding::prepare(encodings, options, &self.info)
    }

    /// Embeds `texts` with `options`: [`prepare_texts`](Self::prepare_texts), then
    /// [`embed_prepared`](Self::embed_prepared). One vector per text, in order, the tokens used
    /// and the timing.
    ///
    /// # Errors
    /// As those two.
    pub async fn embed(
        &self,
        texts: Vec<String>,
        options: EmbedOptions,
        context: RequestContext,
    ) -> Result<Embeddings> {
        let prepared = self.prepare_texts(texts, &options).await?;
        self.embed_prepared(prepared, &options, context).await
    }

    /// Embeds inputs given as token ids (complete model inputs, special tokens included, as
    /// [`tokenize`](Self::tokenize) gives them) through the same checks, inference and
    /// finishing as [`embed`](Self::embed).
    ///
    /// # Errors
    /// As [`embed`](Self::embed), for a bad list too.
    pub async fn embed_tokens(
        &self,
        lists: Vec<Vec<u32>>,
        options: EmbedOptions,
        context: RequestContext,
    ) -> Result<Embeddings> {
        let prepared = self.prepare_tokens(lists, &options)?;
        self.embed_prepared(prepared, &options, context).await
    }

    /// Texts to embed, tokenized and checked: what the request costs is known from here on
    /// (its [`tokens`](Prepared::tokens)), before any inference.
    ///
    /// # Errors
    /// [`EmbedError::Validation`] when the model is not an embedder or for bad `dimensions`,
    /// and every error of [`encode`](Self::encode).
    pub async fn prepare_texts(&self, texts: Vec<String>, options: &EmbedOptions) -> Result<Prepared> {
        self.check_embed(options)?;
        let started = Instant::now();
        let LongInputs::Windows { overlap } = options.long else {
            let encodings = self.encode(texts, options.encode).await?;
            return Ok(Prepared { encodings, windows: Vec::new(), tokenize: started.elapsed() });
        };
        let whole = EncodeOptions { truncate: false, ..options.encode };
        let probes = self.tokenizer.encode(vec![String::new(), "a".into()], whole).await?;
        let frame = match probes.as_slice() {
            [empty, probe] => windows::Frame::of(empty, probe),
            _ => return Err(EmbedError::Internal("the tokenizer did not answer both probes".into())),
        };
        let (mut encodings, mut counts) = (Vec::new(), Vec::new());
        for encoding in self.tokenizer.encode(texts, whole).await? {
            let split = windows::split(encoding, &frame, self.info.max_input_tokens, overlap)?;
            counts.push(split.len());
            encodings.extend(split);
        }
        let encodings = encoding::prepare(encodings, whole, &self.info)?;
        Ok(Prepared { encodings, windows: counts, tokenize: started.elapsed() })
    }

    /// Token-id lists to embed, checked as [`prepare_texts`](Self::prepare_texts) checks texts.
    ///
    /// # Errors
    /// As [`prepare_texts`](Self::prepare_texts), for a bad list too.
    pub fn prepare_tokens(&self, lists: Vec<Vec<u32>>, options: &EmbedOptions) -> Result<Prepared> {
        self.check_embed(options)?;
        let encodings = encoding::prepare(encoding::from_token_ids(lists), options.encode, &self.info)?;
        Ok(Prepared { encodings, windows: Vec::new(), tokenize: Duration::ZERO })
    }

    /// Infers prepared inputs, then truncates each vector to `dimensions` and normalises it.
    ///
    /// # Errors
    /// The errors of [`EmbeddingProvider::embed`].
    pub async fn embed_prepared(
        &self,
        prepared: Prepared,
        options: &EmbedOptions,
        context: RequestContext,
    ) -> Result<Embeddings> {
        let token_counts: Vec<usize> = prepared.encodings.iter().map(Encoding::len).collect();
        let pooled = self.inference.embed(prepared.encodings, context).await?;
        let (vectors, token_counts) = match prepared.windows.is_empty() {
            true => (pooled.vectors, token_counts),
            false => windows::pool_texts(pooled.vectors, token_counts, &prepared.windows, self.info.pooling),
        };
        let vectors = vectors.into_iter().map(|v| vector::finish(v, options, &self.info)).collect();
        Ok(Embeddings { vectors, token_counts, timing: Timing { tokenize: prepared.tokenize, ..pooled.timing } })
    }

    /// The vector of every token of prepared inputs (TEI's `embed_all`): the last hidden state,
    /// before pooling, not normalised, special tokens included.
    ///
    /// # Errors
    /// [`EmbedError::Validation`] for a SPLADE model (its output is per vocabulary entry, not
    /// per token), and the errors of [`EmbeddingProvider::token_vectors`].
    pub async fn token_vectors_prepared(&self, prepared: Prepared, context: RequestContext) -> Result<TokenEmbeddings> {
        self.check_token_vectors()?;
        let token_counts: Vec<usize> = prepared.encodings.iter().map(Encoding::len).collect();
        let out = self.inference.token_vectors(prepared.encodings, context).await?;
        let vectors = out
            .vectors
            .into_iter()
            .zip(&token_counts)
            .map(|(flat, &len)| {
                let width = flat.len() / len.max(1);
                flat.chunks_exact(width.max(1)).map(<[f32]>::to_vec).collect()
            })
            .collect();
        Ok(TokenEmbeddings { vectors, token_counts, timing: Timing { tokenize: prepared.tokenize, ..out.timing } })
    }

    /// Scores each of `texts` against `query` with a cross-encoder: the classifier's raw logits
    /// per pair, in input order, through the same inference (batching, cache, deadline) as
    /// embeddings; token counts are per pair.
    ///
    /// # Errors
    /// As [`prepare_pairs`](Self::prepare_pairs) and [`score_prepared`](Self::score_prepared).
    pub async fn score_pairs(
        &self,
        query: String,
        texts: Vec<String>,
        options: EncodeOptions,
        context: RequestContext,
    ) -> Result<Scores> {
        let prepared = self.prepare_pairs(query, texts, options).await?;
        self.score_prepared(prepared, context).await
    }

    /// (query, text) pairs for a cross-encoder, tokenized and checked.
    ///
    /// # Errors
    /// [`EmbedError::Validation`] when the model is not a reranker, and the errors of
    /// [`encode`](Self::encode).
    pub async fn prepare_pairs(&self, query: String, texts: Vec<String>, options: EncodeOptions) -> Result<Prepared> {
        let pairs = texts.into_iter().map(|text| ClassifierInput::Pair(query.clone(), text)).collect();
        self.prepare_classifier_inputs(pairs, options).await
    }

    /// Inputs of a sequence classifier, texts and pairs in any mix, tokenized and checked in
    /// input order.
    ///
    /// # Errors
    /// As [`prepare_pairs`](Self::prepare_pairs).
    pub async fn prepare_classifier_inputs(
        &self,
        inputs: Vec<ClassifierInput>,
        options: EncodeOptions,
    ) -> Result<Prepared> {
        self.check_task(ModelTask::Rerank)?;
        let started = Instant::now();
        let (mut singles, mut pairs) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
        for (position, input) in inputs.into_iter().enumerate() {
            match input {
                ClassifierInput::Single(text) => {
                    singles.0.push(position);
                    singles.1.push(text);
                }
                ClassifierInput::Pair(first, second) => {
                    pairs.0.push(position);
                    pairs.1.push((first, second));
                }
            }
        }
        let mut placed: Vec<(usize, Encoding)> = Vec::with_capacity(singles.0.len() + pairs.0.len());
        if !singles.1.is_empty() {
            placed.extend(singles.0.into_iter().zip(self.tokenizer.encode(singles.1, options).await?));
        }
        if !pairs.1.is_empty() {
            placed.extend(pairs.0.into_iter().zip(self.tokenizer.encode_pairs(pairs.1, options).await?));
        }
        placed.sort_by_key(|(position, _)| *position);
        let encodings = encoding::prepare(placed.into_iter().map(|(_, e)| e).collect(), options, &self.info)?;
        Ok(Prepared { encodings, windows: Vec::new(), tokenize: started.elapsed() })
    }

    /// The logits of prepared pairs.
    ///
    /// # Errors
    /// The errors of [`EmbeddingProvider::predict`].
    pub async fn score_prepared(&self, prepared: Prepared, context: RequestContext) -> Result<Scores> {
        let token_counts = prepared.encodings.iter().map(Encoding::len).collect();
        let predicted = self.inference.predict(prepared.encodings, context).await?;
        Ok(Scores {
            logits: predicted.logits,
            token_counts,
            timing: Timing { tokenize: prepared.tokenize, ..predicted.timing },
        })
    }

    /// The tokens of each text, for display.
    ///
    /// # Errors
    /// The tokenizer's errors.
    pub async fn tokenize(&self, texts: Vec<String>, add_special_tokens: bool) -> Result<Vec<Vec<Token>>> {
        self.tokenizer.tokenize(texts, add_special_tokens).await
    }

    /// The text of each list of token ids.
    ///
    /// # Errors
    /// [`EmbedError::Validation`] for an id outside the vocabulary, and the tokenizer's errors.
    pub async fn decode(&self, ids: Vec<Vec<u32>>, skip_special_tokens: bool) -> Result<Vec<String>> {
        let vocab = self.info.vocab_size;
        if let Some(id) = ids.iter().flatten().find(|id| **id as usize >= vocab) {
            return Err(EmbedError::Validation(format!("token id {id} is outside the vocabulary of {vocab}")));
        }
        self.tokenizer.decode(ids, skip_special_tokens).await
    }

    /// One forward pass of an empty input through the inference side: proves the model runs
    /// and pays its first-call costs before any request does.
    ///
    /// # Errors
    /// The errors of [`embed`](Self::embed) or [`score_pairs`](Self::score_pairs).
    pub async fn warm_up(&self) -> Result<()> {
        let context = RequestContext::default();
        match self.info.task {
            ModelTask::Embed => self.embed(vec![String::new()], EmbedOptions::default(), context).await.map(drop),
            ModelTask::Rerank => {
                self.score_pairs(String::new(), vec![String::new()], EncodeOptions::default(), context).await.map(drop)
            }
        }
    }

    /// Refuses token vectors of a SPLADE model, whose output is per vocabulary entry.
    ///
    /// # Errors
    /// [`EmbedError::Validation`] for a SPLADE model.
    pub fn check_token_vectors(&self) -> Result<()> {
        if self.info.is_splade() {
            return Err(EmbedError::Validation(format!(
                "model `{}` is a SPLADE model: token vectors are not available; use `/embed_sparse`",
                self.info.model_id
            )));
        }
        Ok(())
    }

    pub(crate) fn check_embed(&self, options: &EmbedOptions) -> Result<()> {
        self.check_task(ModelTask::Embed)?;
        vector::check_dimensions(options, &self.info)
    }

    /// Refuses work of the other task: embeddings from a reranker or scores from an embedder,
    /// saying what the model is and which routes serve it.
    fn check_task(&self, wanted: ModelTask) -> Result<()> {
        if self.info.task == wanted {
            return Ok(());
        }
        let (is, use_instead) = match self.info.task {
            ModelTask::Embed => ("an embedding model", "the embedding routes"),
            ModelTask::Rerank => ("a sequence classifier (reranker or classifier)", "`/rerank` or `/predict`"),
        };
        let cannot = match wanted {
            ModelTask::Embed => "embed",
            ModelTask::Rerank => "rerank or classify",
        };
        Err(EmbedError::Validation(format!(
            "model `{}` is {is} and cannot {cannot}; use {use_instead}",
            self.info.model_id
        )))
    }
}
