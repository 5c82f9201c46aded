//! The embedding flow, read top to bottom in [`EmbedService::embed`]: admission, limits, model,
//! tokenize and check (the request's tokens are known from here), lane, tenant rate and
//! deadline, inference, usage and timing, metrics. Through it, `embed_sparse` and `embed_all`
//! (a SPLADE model's sparse vectors and the vector of every token, TEI's routes of those names)
//! and `embed_quantized` (vectors in the types a client asks for, Cohere's `embedding_types`).

use std::future::Future;
use std::time::Instant;

use aki_core::quantize::{OutputType, Quantized};
use aki_core::{
    EmbedError, EmbedOptions, Lane, LoadedModel, LongInputs, ModelInfo, ModelPipeline, Prepared, RequestContext,
    Result, Timing, vector,
};
use tokio::sync::OwnedSemaphorePermit;

use crate::requests::{EmbedReply, EmbedRequest, Inputs, PromptChoice};
use crate::service::{EmbedService, tokenizing, within};

/// What the inference step of an embedding request gives back.
struct Inferred<V> {
    vectors: Vec<V>,
    /// Length of each vector (of each token's vector, for token vectors).
    dimension: usize,
    tokens: usize,
    timing: Timing,
}

/// An embedding request past every step before inference ([`EmbedService::admit_embedding`]).
pub(crate) struct Admitted {
    pub(crate) model: LoadedModel,
    pub(crate) prepared: Prepared,
    pub(crate) options: EmbedOptions,
    pub(crate) context: RequestContext,
    /// When inference must be done.
    pub(crate) until: Instant,
    /// Its place among the requests in flight, held until it ends.
    pub(crate) permit: OwnedSemaphorePermit,
}

impl EmbedService {
    /// Embeds a request's inputs.
    ///
    /// # Errors
    /// [`EmbedError::Empty`] or [`EmbedError::Validation`] for inputs over the limits or bad
    /// options, [`EmbedError::Unavailable`] while the default model loads, the store's errors
    /// (model not served, load failure), [`EmbedError::Busy`] when the tenant's token rate is
    /// spent or the queue ahead would keep it past its deadline, [`EmbedError::Timeout`] past
    /// the deadline, and the pipeline's errors.
    pub async fn embed(&self, route: &str, request: EmbedRequest) -> Result<EmbedReply> {
        self.embed_checked(route, request, |_| Ok(())).await
    }

    /// [`embed`](Self::embed), with `check` refusing a model before any of the request's work.
    ///
    /// # Errors
    /// As [`embed`](Self::embed), and `check`'s.
    pub(crate) async fn embed_checked(
        &self,
        route: &str,
        request: EmbedRequest,
        check: impl FnOnce(&ModelPipeline) -> Result<()>,
    ) -> Result<EmbedReply> {
        let infer = |model: LoadedModel, prepared, options: EmbedOptions, context| async move {
            let out = model.embed_prepared(prepared, &options, context).await?;
            let dimension = options.dimensions.unwrap_or(model.info().dimension);
            Ok(Inferred { dimension, tokens: out.tokens(), timing: out.timing, vectors: out.vectors })
        };
        self.embedding(route, request, check, infer).await
    }

    /// One embedding request from start to end: [`admit_embedding`](Self::admit_embedding),
    /// `infer` within the deadline, the reply with its usage and timing, and the metrics.
    async fn embedding<V, Fut>(
        &self,
        route: &str,
        request: EmbedRequest,
        check: impl FnOnce(&ModelPipeline) -> Result<()>,
        infer: impl FnOnce(LoadedModel, Prepared, EmbedOptions, RequestContext) -> Fut,
    ) -> Result<EmbedReply<V>>
    where
        Fut: Future<Output = Result<Inferred<V>>>,
    {
        let started = Instant::now();
        let tenant = request.caller.tenant.clone();
        let work = async {
            let Admitted { model, prepared, options, context, until, permit: _permit } =
                self.admit_embedding(request, started, check).await?;
            let (id, lane) = (model.info().model_id.clone(), context.lane);
            let out = within(until, infer(model, prepared, options, context)).await?;
            Ok(EmbedReply {
                model: id,
                dimension: out.dimension,
                tokens: out.tokens,
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

    /// What a request's wire fields ask for its long inputs: `windows` on or off, and the
    /// windows' `overlap` (which alone asks for windows); neither leaves it to the server
    /// (`limits.window_long_inputs`), and a missing overlap is `limits.window_overlap_tokens`.
    pub fn long_inputs(&self, windows: Option<bool>, overlap: Option<usize>) -> LongInputs {
        match (windows, overlap) {
            (None, None) => LongInputs::ServerDefault,
            (Some(false), _) => LongInputs::Cut,
            (_, overlap) => LongInputs::Windows { overlap: overlap.unwrap_or(self.limits().window_overlap_tokens) },
        }
    }

    /// Every step of an embedding request before inference: admission, limits, the model
    /// (which `check` may refuse), prompt, tokenize and check within the deadline, then the
    /// lane, the tenant's token rate and the deadline of inference.
    ///
    /// # Errors
    /// As [`embed`](Self::embed), and `check`'s.
    pub(crate) async fn admit_embedding(
        &self,
        request: EmbedRequest,
        started: Instant,
        check: impl FnOnce(&ModelPipeline) -> Result<()>,
    ) -> Result<Admitted> {
        let EmbedRequest { model, inputs, mut options, prompt, deadline, caller } = request;
        let permit = self.admit()?;
        if options.long == LongInputs::ServerDefault {
            options.long = match self.limits().window_long_inputs {
                true => LongInputs::Windows { overlap: self.limits().window_overlap_tokens },
                false => LongInputs::Cut,
            };
        }
        inputs.check(self.limits())?;
        let preparing = async {
            let model = self.model(model.as_deref()).await?;
            check(&model)?;
            let prepared = match inputs {
                Inputs::Texts(texts) => {
                    let texts = self.prompted(&model, &prompt, texts)?;
                    tokenizing(model.prepare_texts(texts, &options)).await?
                }
                Inputs::TokenIds(lists) => {
                    if prompt != PromptChoice::default() {
                        return Err(EmbedError::Validation(
                            "a prompt applies to texts; token-id inputs are complete model inputs".into(),
                        ));
                    }
                    tokenizing(async { model.prepare_tokens(lists, &options) }).await?
                }
            };
            Ok((model, prepared))
        };
        let (model, prepared) = within(self.deadline(deadline, Lane::Interactive, started), preparing).await?;
        let (context, until) = self.schedule(&caller, prepared.tokens(), deadline, started)?;
        Ok(Admitted { model, prepared, options, context, until, permit })
    }
}

impl EmbedService {
    /// The SPLADE vector of each input as its non-zero `(vocabulary index, weight)` pairs, in
    /// index order; never normalised, never cut to `dimensions`.
    ///
    /// # Errors
    /// As [`embed`](Self::embed), and [`EmbedError::Validation`] when the model is not a
    /// SPLADE model.
    pub async fn embed_sparse(&self, route: &str, mut request: EmbedRequest) -> Result<EmbedReply<Vec<(usize, f32)>>> {
        (request.options.normalize, request.options.dimensions) = (Some(false), None);
        let reply = self.embed_checked(route, request, |model| splade_only(model.info())).await?;
        Ok(reply.map(|v| vector::sparse(&v)))
    }

    /// The last hidden state of every token of each input (special tokens included), before
    /// pooling and not normalised, as TEI's `embed_all` returns them.
    ///
    /// # Errors
    /// As [`embed`](Self::embed), and [`EmbedError::Validation`] for a SPLADE model or a
    /// classifier.
    pub async fn embed_all(&self, route: &str, mut request: EmbedRequest) -> Result<EmbedReply<Vec<Vec<f32>>>> {
        (request.options.normalize, request.options.dimensions) = (Some(false), None);
        // Every token's vector of the text itself: one window, cut as asked.
        request.options.long = LongInputs::Cut;
        let infer = |model: LoadedModel, prepared, _, context| async move {
            let out = model.token_vectors_prepared(prepared, context).await?;
            let dimension = out.vectors.first().and_then(|tokens| tokens.first()).map_or(0, Vec::len);
            Ok(Inferred { dimension, tokens: out.tokens(), timing: out.timing, vectors: out.vectors })
        };
        self.embedding(route, request, ModelPipeline::check_token_vectors, infer).await
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
        let calibrated = types.iter().any(|t| t.is_calibrated());
        // Refused before any work, and counted: a model whose vectors cannot be calibrated.
        let check = |model: &ModelPipeline| if calibrated { model.check_quantized() } else { Ok(()) };
        let reply = self.embed_checked(route, request, check).await?;
        let ranges = match calibrated {
            true => Some(self.model(model.as_deref()).await?.ranges(&options).await?),
            false => None,
        };
        Ok(reply.map(|v| Quantized::of(v, types, ranges.as_ref())))
    }
}
