//! `EmbedService::tokenize`, `decode` and `similarity`: the calls that answer from a model's
//! tokenizer, or compare embeddings, through the same admission, limits, deadline and metrics.

use std::time::Instant;

use aki_core::{EmbedError, EmbedOptions, Lane, Result, Tenant, Token};

use crate::requests::{
    DecodeRequest, EmbedRequest, Inputs, PromptChoice, SimilarityReply, SimilarityRequest, TokenizeRequest,
};
use crate::service::{EmbedService, UNKNOWN_TENANT, within};

impl EmbedService {
    /// The tokens of each text, for display.
    ///
    /// # Errors
    /// As [`embed`](Self::embed), for the texts' limits, the model and the deadline.
    pub async fn tokenize(&self, route: &str, request: TokenizeRequest) -> Result<Vec<Vec<Token>>> {
        let started = Instant::now();
        let work = async {
            let _admitted = self.admit()?;
            self.limits().check_texts(&request.texts)?;
            let model = self.model(request.model.as_deref()).await?;
            // A prompt only when one is asked for: the tokens of the texts as given otherwise.
            let texts = if request.prompt == PromptChoice::default() {
                request.texts
            } else {
                self.prompted(&model, &request.prompt, request.texts)?
            };
            model.tokenize(texts, request.add_special_tokens).await
        };
        let result = within(self.deadline(request.deadline, Lane::Interactive, started), work).await;
        self.finish(route, started, &Tenant::new(UNKNOWN_TENANT, 1), &result, |_| (0, None));
        result
    }

    /// The text of each list of token ids.
    ///
    /// # Errors
    /// As [`tokenize`](Self::tokenize), and [`EmbedError::Validation`] for an id outside the
    /// vocabulary.
    pub async fn decode(&self, route: &str, request: DecodeRequest) -> Result<Vec<String>> {
        let started = Instant::now();
        let work = async {
            let _admitted = self.admit()?;
            self.limits().check(request.ids.len(), 0, 0)?;
            let total: usize = request.ids.iter().map(Vec::len).sum();
            if total > self.limits().max_request_chars {
                return Err(EmbedError::Validation(format!(
                    "{total} token ids, more than the limit of {} per request (limits.max_request_chars)",
                    self.limits().max_request_chars
                )));
            }
            let model = self.model(request.model.as_deref()).await?;
            model.decode(request.ids, request.skip_special_tokens).await
        };
        let result = within(self.deadline(request.deadline, Lane::Interactive, started), work).await;
        self.finish(route, started, &Tenant::new(UNKNOWN_TENANT, 1), &result, |_| (0, None));
        result
    }

    /// The cosine similarity of each sentence to the source sentence: all of them embedded in
    /// one request (unit vectors, full dimension), then compared.
    ///
    /// # Errors
    /// As [`embed`](Self::embed), and [`EmbedError::Empty`] for no sentences.
    pub async fn similarity(&self, route: &str, request: SimilarityRequest) -> Result<SimilarityReply> {
        let SimilarityRequest { model, source, sentences, encode, prompt, deadline, caller } = request;
        if sentences.is_empty() {
            let error = EmbedError::Empty;
            self.reject(route, &error);
            return Err(error);
        }
        let texts = std::iter::once(source).chain(sentences).collect();
        let options = EmbedOptions { normalize: Some(true), encode, ..EmbedOptions::default() };
        let request = EmbedRequest { model, inputs: Inputs::Texts(texts), options, prompt, deadline, caller };
        let embedded = self.embed(route, request).await?;
        let (first, rest) = embedded.vectors.split_first().ok_or(EmbedError::Empty)?;
        let scores = rest.iter().map(|v| v.iter().zip(first).map(|(a, b)| a * b).sum()).collect();
        Ok(SimilarityReply { scores, embedded })
    }
}
