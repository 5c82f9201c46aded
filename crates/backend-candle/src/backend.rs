//! `CandleBackend`: loads a model from its files and serves the inference port on a dedicated
//! thread.

use std::sync::{Arc, mpsc};

use aki_core::{
    EmbedError, EmbeddingProvider, Encoding, ModelInfo, ModelPipeline, ModelTask, Pooled, Pooling, Predictions,
    RequestContext, Result, Timing, TokenVectors,
};
use async_trait::async_trait;
use tokio::sync::oneshot;

use crate::batch::Output;
use crate::config::{CandleConfig, device_name};
use crate::layout::ModelLayout;
use crate::model::{Model, load_weights, packable};
use crate::thread::{self, Job};
use crate::tokenizer::HfTokenizer;
use crate::{safetensors, source};

/// A model served by candle: the inference port on one thread the backend owns, so inference
/// never blocks the async runtime and forward passes never compete with each other for the
/// cores; its tokenizer ([`HfTokenizer`]) and facts come with it.
pub struct CandleBackend {
    info: ModelInfo,
    tokenizer: HfTokenizer,
    jobs: mpsc::Sender<Job>,
    weight_bytes: u64,
}

impl CandleBackend {
    /// Loads the model `config.model` (see [`source::resolve`] for where it is looked up).
    /// Blocking: call it from a blocking context.
    ///
    /// # Errors
    /// [`EmbedError::Load`] when a file is missing or corrupt, the architecture is not one the
    /// backend runs, the tokenizer cannot be read, or the device or dtype cannot be used.
    pub fn load(config: &CandleConfig) -> Result<Self> {
        let dir = source::resolve(&config.model, config.revision.as_deref())?;
        let layout = ModelLayout::read(&dir)?;
        let device = config.open_device()?;
        // bf16 or f16 by default only where their quality gate was measured: the packed dense
        // embedders.
        let dense = layout.task == ModelTask::Embed && layout.pooling != Pooling::Splade;
        let (dtype, chosen) = config.dtype_on(&device, packable(&layout) && dense)?;
        if chosen {
            let isa = config.isa()?.describe();
            let dtype = format!("{dtype:?}").to_lowercase();
            tracing::info!(%isa, %dtype, "no dtype configured: this CPU's default weights; set backend.dtype = \"f32\" for f32");
        }
        let tokenizer = HfTokenizer::load(&dir.join("tokenizer.json"), layout.max_seq_length)?;
        let weights = dir.join("model.safetensors");
        let model = load_weights(&weights, &layout, &device, dtype, config)?;
        let dtype = model.dtype(dtype);
        let weight_bytes = match &model {
            Model::Packed(packed) => packed.bytes(),
            _ => safetensors::elements(&weights)? * dtype.size_in_bytes() as u64,
        };
        let info = ModelInfo {
            model_id: config.model.clone(),
            dimension: match (layout.task, layout.pooling) {
                (ModelTask::Rerank, _) => layout.labels.len(),
                (ModelTask::Embed, Pooling::Splade) => layout.vocab_size,
                (ModelTask::Embed, _) => layout.hidden_size,
            },
            max_input_tokens: layout.max_seq_length,
            vocab_size: layout.vocab_size,
            pooling: layout.pooling,
            normalize_default: layout.normalize,
            device: device_name(&device),
            dtype: match &model {
                Model::Packed(packed) => packed.precision().name().to_string(),
                _ => format!("{dtype:?}").to_lowercase(),
            },
            is_padded: !matches!(model, Model::Packed(_)),
            engine: match &model {
                Model::Packed(packed) => format!("packed cpu ({})", packed.isa().describe()),
                _ => "candle-transformers".to_string(),
            },
            architecture: layout.architecture.as_str().to_string(),
            task: layout.task,
            labels: if layout.task == ModelTask::Rerank { layout.labels.clone() } else { Vec::new() },
            multi_label: layout.multi_label,
            prompts: layout.prompts.clone(),
        };
        let jobs = thread::spawn(model, config.max_forward_batch.max(1), &info.model_id)?;
        tracing::info!(model = %info.model_id, dir = %dir.display(), architecture = %info.architecture, task = info.task.as_str(), device = %info.device, dtype = %info.dtype, engine = %info.engine, "model loaded");
        Ok(Self { info, tokenizer, jobs, weight_bytes })
    }

    /// Bytes of weights the model holds in memory (on the device), the main part of its
    /// footprint: on the packed path exactly what it keeps; on the candle path the file's
    /// tensors in the configured dtype.
    pub fn weight_bytes(&self) -> u64 {
        self.weight_bytes
    }

    /// Facts about the model.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The model's tokenizer.
    pub fn tokenizer(&self) -> HfTokenizer {
        self.tokenizer.clone()
    }

    /// The model's request pipeline with this backend as its inference side, neither batched
    /// nor cached (the servers wrap it; see `ModelPipeline::with_inference`).
    pub fn into_pipeline(self) -> ModelPipeline {
        ModelPipeline::new(self.info.clone(), Arc::new(self.tokenizer.clone()), Arc::new(self))
    }

    /// Runs `batch` on the inference thread for `output`, if the model computes `task`.
    async fn run(&self, task: ModelTask, output: Output, batch: Vec<Encoding>) -> Result<(Vec<Vec<f32>>, Timing)> {
        if task != self.info.task {
            return Err(EmbedError::Internal(format!(
                "model `{}` does not {}: the pipeline routes by task",
                self.info.model_id,
                task.as_str()
            )));
        }
        if batch.is_empty() {
            return Ok((Vec::new(), Timing::default()));
        }
        let started = std::time::Instant::now();
        let (reply, answer) = oneshot::channel();
        let job = Job { batch, output, reply, span: tracing::Span::current() };
        self.jobs.send(job).map_err(|_| EmbedError::Unavailable("the inference thread has stopped".into()))?;
        let outputs = answer.await.map_err(|_| EmbedError::Internal("the inference thread dropped a job".into()))??;
        Ok((outputs, Timing { inference: started.elapsed(), ..Timing::default() }))
    }
}

#[async_trait]
impl EmbeddingProvider for CandleBackend {
    async fn embed(&self, batch: Vec<Encoding>, _: RequestContext) -> Result<Pooled> {
        let (vectors, timing) = self.run(ModelTask::Embed, Output::Head, batch).await?;
        Ok(Pooled { vectors, timing })
    }

    async fn predict(&self, batch: Vec<Encoding>, _: RequestContext) -> Result<Predictions> {
        let (logits, timing) = self.run(ModelTask::Rerank, Output::Head, batch).await?;
        Ok(Predictions { logits, timing })
    }

    async fn token_vectors(&self, batch: Vec<Encoding>, _: RequestContext) -> Result<TokenVectors> {
        let (vectors, timing) = self.run(ModelTask::Embed, Output::Tokens, batch).await?;
        Ok(TokenVectors { vectors, timing })
    }
}
