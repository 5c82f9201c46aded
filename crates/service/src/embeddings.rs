//! `EmbedService::embed_sparse` and `embed_all` (a SPLADE model's sparse vectors and the vector
//! of every token, TEI's routes of those names) and `embed_quantized` (vectors in the types a
//! client asks for, Cohere's `embedding_types`), through the embedding flow of
//! [`embed`](crate::EmbedService::embed): the same admission, limits, lanes, deadline and
//! metrics.

use std::time::Instant;

use aki_core::quantize::{OutputType, Quantized};
use aki_core::{EmbedError, LongInputs, ModelInfo, ModelPipeline, Result, vector};

use crate::requests::{EmbedReply, EmbedRequest};
use crate::service::{Admitted, EmbedService, within};

impl EmbedService {
    /// The SPLADE vector of each input as its non-zero `(vocabulary index, weight)` pairs, in
    /// index order; never normalised, never cut to `dimensions`.
    ///
    /// # Errors
    /// As [`embed`](Self::embed), and [`EmbedError::Validation`] when the model is not a
    /// SPLADE model.
    pub async fn embed_sparse(&self, route: &str, mut request: EmbedRequest) -> Result<EmbedReply<Vec<(usize, f32)>>> {
        let started = Instant::now();
        let tenant = request.caller.tenant.clone();
        (request.options.normalize, request.options.dimensions) = (Some(false), None);
        let work = async {
            let Admitted { model, prepared, options, context, until, permit: _permit } =
                self.admit_embedding(request, started, |model| splade_only(model.info())).await?;
            let lane = context.lane;
            let out = within(until, model.embed_prepared(prepared, &options, context)).await?;
            Ok(EmbedReply {
                model: model.info().model_id.clone(),
                dimension: model.info().dimension,
                tokens: out.tokens(),
                lane,
                vectors: out.vectors.iter().map(|v| vector::sparse(v)).collect(),
                timing: out.timing,
                total: started.elapsed(),
            })
        };
        let result = work.await;
        self.finish(route, started, &tenant, &result, EmbedReply::facts);
        result
    }

    /// The last hidden state of every token of each input (special tokens included), before
    /// pooling and not normalised, as TEI's `embed_all` returns them.
    ///
    /// # Errors
    /// As [`embed`](Self::embed), and [`EmbedError::Validation`] for a SPLADE model or a
    /// classifier.
    pub async fn embed_all(&self, route: &str, mut request: EmbedRequest) -> Result<EmbedReply<Vec<Vec<f32>>>> {
        let started = Instant::now();
        let tenant = request.caller.tenant.clone();
        (request.options.normalize, request.options.dimensions) = (Some(false), None);
        // Every token's vector of the text itself: one window, cut as asked.
        request.options.long = LongInputs::Cut;
        let work = async {
            let Admitted { model, prepared, context, until, permit: _permit, .. } =
                self.admit_embedding(request, started, ModelPipeline::check_token_vectors).await?;
            let lane = context.lane;
            let out = within(until, model.token_vectors_prepared(prepared, context)).await?;
            let dimension = out.vectors.first().and_then(|tokens| tokens.first()).map_or(0, Vec::len);
            Ok(EmbedReply {
                model: model.info().model_id.clone(),
                dimension,
                tokens: out.tokens(),
                lane,
                vectors: out.vectors,
                timing: out.timing,
                total: started.elapsed(),
            })
        };
        let result = work.await;
        self.finish(route, started, &tenant, &result, EmbedReply::facts);
        result
    }
}

/// Refuses a model that is not a SPLADE model, before any of its work is done.
fn splade_only(info: &ModelInfo) -> Result<()> {
    if info.is_splade() {
        return Ok(());
    }
    Err(EmbedError::Validation(format!(
        "model `{}` is not a SPLADE model: sparse vectors come from `*ForMaskedLM` models with SPLADE pooling; use `/embed`",
        info.model_id
    )))
}

impl EmbedService {
    /// Embeds a request's inputs and gives each vector in every one of `types` (Cohere's
    /// `embedding_types`); `int8` and `uint8` are cut by the model's calibrated ranges under the
    /// request's normalisation and `dimensions` (the calibration texts are embedded once, by
    /// the first request that asks).
    ///
    /// # Errors
    /// As [`embed`](Self::embed), and [`EmbedError::Validation`] for no type or a model that
    /// is not a dense embedder.
    pub async fn embed_quantized(
        &self,
        route: &str,
        request: EmbedRequest,
        types: &[OutputType],
    ) -> Result<EmbedReply<Quantized>> {
        if types.is_empty() {
            let error = EmbedError::Validation("ask for at least one embedding type".into());
            self.reject(route, &error);
            return Err(error);
        }
        let (model, options) = (request.model.clone(), request.options);
        let reply = self.embed(route, request).await?;
        let ranges = match types.iter().any(|t| t.is_calibrated()) {
            true => Some(self.model(model.as_deref()).await?.ranges(&options).await?),
            false => None,
        };
        let EmbedReply { model, dimension, vectors, tokens, lane, timing, total } = reply;
        let vectors = vectors.into_iter().map(|v| Quantized::of(v, types, ranges.as_ref())).collect();
        Ok(EmbedReply { model, dimension, vectors, tokens, lane, timing, total })
    }
}
