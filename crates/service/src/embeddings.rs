//! `EmbedService::embed_sparse` and `embed_all`: a SPLADE model's sparse vectors and the vector
//! of every token (TEI's routes of those names), through the embedding flow of
//! [`embed`](crate::EmbedService::embed): the same admission, limits, lanes, deadline and
//! metrics.

use std::time::Instant;

use aki_core::{EmbedError, ModelInfo, ModelPipeline, Result, vector};

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
