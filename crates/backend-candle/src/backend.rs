//! `CandleBackend`: the `EmbeddingProvider` that tokenizes with `tokenizers` and infers with
//! candle on a dedicated thread.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Arc, mpsc};

use aki_core::{
    EmbedError, EmbeddingProvider, EncodeOptions, Encoding, ModelInfo, ModelTask, Pooled, RequestContext, Result,
    Timing, Token, TruncationDirection,
};
use async_trait::async_trait;
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config as BertConfig;
use tokenizers::{Tokenizer, TruncationParams, TruncationStrategy};
use tokio::sync::oneshot;

use crate::bert::{BertEmbedder, Family};
use crate::config::{CandleConfig, device_name};
use crate::layout::{Architecture, ModelLayout};
use crate::modernbert::{ModernBertConfig, ModernBertEmbedder};
use crate::packed::{self, PackedBert, Precision};
use crate::qwen3::{Qwen3Config, Qwen3Embedder};
use crate::source;

/// The model's tokenizer in the three set-ups a request can ask for.
struct Tokenizers {
    keep_start: Tokenizer,
    keep_end: Tokenizer,
    whole: Tokenizer,
    max_tokens: usize,
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
            max_tokens,
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
        self.checked(encoded)
    }

    /// `(query, text)` pairs as one input each, cut longest part first when truncating.
    fn encode_pairs(&self, query: &str, texts: Vec<String>, options: EncodeOptions) -> Result<Vec<Encoding>> {
        let tokenizer = self.pick(options);
        let pairs: Vec<tokenizers::EncodeInput> =
            texts.into_iter().map(|text| (query.to_string(), text).into()).collect();
        let encoded = tokenizer.encode_batch(pairs, true).map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        self.checked(encoded)
    }

    fn pick(&self, options: EncodeOptions) -> &Tokenizer {
        match (options.truncate, options.direction) {
            (false, _) => &self.whole,
            (true, TruncationDirection::Right) => &self.keep_start,
            (true, TruncationDirection::Left) => &self.keep_end,
        }
    }

    /// Encodings from the tokenizer's output, each within the model's maximum.
    fn checked(&self, encoded: Vec<tokenizers::Encoding>) -> Result<Vec<Encoding>> {
        encoded
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                if e.len() > self.max_tokens {
                    return Err(EmbedError::Validation(format!(
                        "input {i} has {} tokens, more than the model's maximum of {}; \
                         shorten it or set `truncate` to true",
                        e.len(),
                        self.max_tokens
                    )));
                }
                Ok(Encoding { ids: e.get_ids().to_vec(), type_ids: e.get_type_ids().to_vec() })
            })
            .collect()
    }
}

/// One inference request for the model thread.
struct Job {
    batch: Vec<Encoding>,
    reply: oneshot::Sender<Result<Vec<Vec<f32>>>>,
    span: tracing::Span,
}

/// A BERT-family sentence embedding model served by candle.
///
/// Tokenization runs on tokio's blocking pool (the `tokenizers` crate spreads a batch over
/// rayon's threads); inference runs on one thread the backend owns, so it never blocks the
/// async runtime and forward passes never compete with each other for the cores.
pub struct CandleBackend {
    info: ModelInfo,
    tokenizers: Arc<Tokenizers>,
    jobs: mpsc::Sender<Job>,
    weight_bytes: u64,
}

impl CandleBackend {
    /// Loads the model `config.model` (see [`source::resolve`] for where it is looked up).
    /// Blocking: call it from a blocking context.
    ///
    /// # Errors
    /// [`EmbedError::Load`] when a file is missing or corrupt, the architecture is not BERT,
    /// the tokenizer cannot be read, or the device or dtype cannot be used.
    pub fn load(config: &CandleConfig) -> Result<Self> {
        let dir = source::resolve(&config.model, config.revision.as_deref())?;
        let layout = ModelLayout::read(&dir)?;
        let device = config.open_device()?;
        // bf16 by default only where its quality gate was measured: the packed embedders.
        let (dtype, chosen) = config.dtype_on(&device, packable(&layout) && layout.task == ModelTask::Embed)?;
        if chosen {
            tracing::info!(
                "no dtype configured: bf16 weights on this CPU (AVX-512 BF16); set backend.dtype = \"f32\" for f32"
            );
        }
        let tokenizers = Tokenizers::load(&dir.join("tokenizer.json"), layout.max_seq_length)?;
        let weights = dir.join("model.safetensors");
        let model = load_weights(&weights, &layout, &device, dtype, config)?;
        let dtype = model.dtype(dtype);
        let weight_bytes = match &model {
            Model::Packed(packed) => packed.bytes(),
            _ => safetensors_elements(&weights)? * dtype.size_in_bytes() as u64,
        };
        let info = ModelInfo {
            model_id: config.model.clone(),
            dimension: if layout.task == ModelTask::Rerank { layout.labels } else { layout.hidden_size },
            max_input_tokens: layout.max_seq_length,
            vocab_size: layout.vocab_size,
            pooling: layout.pooling,
            normalize_default: layout.normalize,
            device: device_name(&device),
            dtype: format!("{dtype:?}").to_lowercase(),
            is_padded: !matches!(model, Model::Packed(_)),
            engine: match &model {
                Model::Packed(packed) => format!("packed cpu ({})", packed.isa().describe()),
                _ => "candle-transformers".to_string(),
            },
            architecture: layout.architecture.as_str().to_string(),
            task: layout.task,
            prompts: layout.prompts.clone(),
        };
        let jobs = spawn_model_thread(model, config.max_forward_batch.max(1), &info.model_id)?;
        tracing::info!(model = %info.model_id, dir = %dir.display(), architecture = %info.architecture, task = info.task.as_str(), device = %info.device, dtype = %info.dtype, engine = %info.engine, "model loaded");
        Ok(Self { info, tokenizers: Arc::new(tokenizers), jobs, weight_bytes })
    }

    /// Bytes of weights the model holds in memory (on the device), the main part of its
    /// footprint: on the packed path exactly what it keeps; on the candle path the file's
    /// tensors in the configured dtype.
    pub fn weight_bytes(&self) -> u64 {
        self.weight_bytes
    }

    fn check(&self, batch: &[Encoding]) -> Result<()> {
        for (i, e) in batch.iter().enumerate() {
            if e.is_empty() || e.len() > self.info.max_input_tokens {
                return Err(EmbedError::Validation(format!(
                    "input {i} has {} tokens; the model takes 1 to {}",
                    e.len(),
                    self.info.max_input_tokens
                )));
            }
            if e.type_ids.len() != e.ids.len() {
                return Err(EmbedError::Validation(format!("input {i}: type ids and ids differ in length")));
            }
            if let Some(id) = e.ids.iter().find(|&&id| id as usize >= self.info.vocab_size) {
                return Err(EmbedError::Validation(format!(
                    "input {i}: token id {id} is outside the vocabulary of {} tokens",
                    self.info.vocab_size
                )));
            }
        }
        Ok(())
    }
}

/// The forward pass a backend runs: the packed CPU path (BERT-layer embedders and
/// cross-encoders), or candle-transformers (every other device, dtype and family; also the
/// reference).
enum Model {
    Packed(PackedBert),
    Bert(BertEmbedder),
    ModernBert(ModernBertEmbedder),
    Qwen3(Qwen3Embedder),
}

impl Model {
    fn forward(&self, batch: &[&Encoding]) -> Result<Vec<Vec<f32>>> {
        let out = match self {
            Self::Packed(model) => return Ok(model.forward(batch)),
            Self::Bert(model) => model.forward(batch),
            Self::ModernBert(model) => model.forward(batch),
            Self::Qwen3(model) => model.forward(batch),
        };
        out.map_err(|e| EmbedError::Backend(e.to_string()))
    }

    /// The dtype it really runs in, given the one asked for.
    fn dtype(&self, asked: DType) -> DType {
        if matches!(self, Self::ModernBert(_)) { DType::F32 } else { asked }
    }
}

/// Whether the packed CPU path can run this model at all: the BERT-layer families, embedders
/// and cross-encoders.
fn packable(layout: &ModelLayout) -> bool {
    matches!(layout.architecture, Architecture::Bert | Architecture::XlmRoberta)
}

fn load_weights(
    path: &Path,
    layout: &ModelLayout,
    device: &Device,
    dtype: DType,
    config: &CandleConfig,
) -> Result<Model> {
    let err = |e: candle_core::Error| EmbedError::Load(format!("{}: {e}", path.display()));
    if !path.is_file() {
        return Err(EmbedError::Load(format!("{} is missing", path.display())));
    }
    let mmap = |dtype: DType| {
        // SAFETY: the weights file is memory-mapped read-only; model files are not modified
        // while a server runs (the same contract as candle's and TEI's loaders).
        #[allow(unsafe_code)]
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[path], dtype, device) };
        vb.map_err(err)
    };
    let family = match layout.architecture {
        Architecture::Bert => Family::Bert,
        Architecture::XlmRoberta => Family::XlmRoberta,
        Architecture::ModernBert => {
            if dtype != DType::F32 {
                tracing::info!(?dtype, "ModernBERT runs in f32 (candle-transformers builds its masks in f32)");
            }
            let family: ModernBertConfig = layout.family_config()?;
            return ModernBertEmbedder::load(mmap(DType::F32)?, &family, layout.pooling)
                .map(Model::ModernBert)
                .map_err(err);
        }
        Architecture::Qwen3 => {
            let family: Qwen3Config = layout.family_config()?;
            return Qwen3Embedder::load(mmap(dtype)?, &family, layout.pooling).map(Model::Qwen3).map_err(err);
        }
    };
    let bert: BertConfig = layout.family_config()?;
    let rerank = layout.task == ModelTask::Rerank;
    let packed = packed::unsupported(&bert, device, dtype);
    match packed {
        None if config.packed => {
            // The packed path reads f32 and rounds the linear layers itself when it keeps them
            // in bf16.
            let precision = if dtype == DType::BF16 { Precision::Bf16 } else { Precision::F32 };
            let isa = config.isa()?;
            if precision == Precision::Bf16 && !isa.bf16() {
                tracing::warn!(isa = %isa.describe(), "bf16 weights without AVX-512 BF16: the products run in plain code, slower than f32");
            }
            let vb = mmap(DType::F32)?;
            let model = PackedBert::load(vb.clone(), &bert, family, layout.pooling, config.threads, precision, isa);
            let model = if rerank { model.and_then(|m| m.with_classifier(&vb, family, layout.labels)) } else { model };
            model.map(Model::Packed).map_err(err)
        }
        reason => {
            if let (true, Some(reason)) = (config.packed, reason) {
                tracing::info!(%reason, "using candle-transformers instead of the packed CPU path");
            }
            let vb = mmap(dtype)?;
            let model = if rerank {
                BertEmbedder::load_classifier(vb, &bert, family, layout.labels)
            } else {
                BertEmbedder::load(vb, &bert, family, layout.pooling)
            };
            model.map(Model::Bert).map_err(err)
        }
    }
}

/// Elements of every tensor in a safetensors file, from its header (an 8-byte little-endian
/// length, then a JSON object of tensors with their shapes).
fn safetensors_elements(path: &Path) -> Result<u64> {
    use std::io::Read;
    let err = |e: &dyn std::fmt::Display| EmbedError::Load(format!("{}: {e}", path.display()));
    let mut file = std::fs::File::open(path).map_err(|e| err(&e))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|e| err(&e))?;
    let len = usize::try_from(u64::from_le_bytes(len)).unwrap_or(usize::MAX);
    if len > 100 << 20 {
        return Err(err(&"the safetensors header is larger than 100 MiB: not a safetensors file"));
    }
    let mut header = vec![0u8; len];
    file.read_exact(&mut header).map_err(|e| err(&e))?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header).map_err(|e| err(&e))?;
    let elements = header
        .iter()
        .filter(|(name, _)| *name != "__metadata__")
        .map(|(_, tensor)| tensor["shape"].as_array().map_or(0, |s| s.iter().filter_map(|d| d.as_u64()).product()))
        .sum();
    Ok(elements)
}

/// Starts the thread that owns the model; it ends when the backend (the sender) is dropped.
fn spawn_model_thread(model: Model, max_batch: usize, name: &str) -> Result<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name(format!("aki-infer-{}", name.rsplit('/').next().unwrap_or(name)))
        .spawn(move || {
            for job in rx {
                let _entered = job.span.enter();
                let result = catch_unwind(AssertUnwindSafe(|| run_sorted(&model, &job.batch, max_batch)))
                    .unwrap_or_else(|panic| {
                        Err(EmbedError::Internal(format!("inference panicked: {}", panic_text(&panic))))
                    });
                // The caller may have gone away; its result is then simply dropped.
                let _ = job.reply.send(result);
            }
        })
        .map_err(|e| EmbedError::Load(format!("cannot start the inference thread: {e}")))?;
    Ok(tx)
}

/// Runs `batch` in chunks of at most `max_batch` sequences of similar length (less padding),
/// returning vectors in the original order.
fn run_sorted(model: &Model, batch: &[Encoding], max_batch: usize) -> Result<Vec<Vec<f32>>> {
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by_key(|&i| batch[i].len());
    let mut out = vec![Vec::new(); batch.len()];
    for chunk in order.chunks(max_batch) {
        let inputs: Vec<&Encoding> = chunk.iter().map(|&i| &batch[i]).collect();
        let vectors = model.forward(&inputs)?;
        for (&i, v) in chunk.iter().zip(vectors) {
            out[i] = v;
        }
    }
    Ok(out)
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

#[async_trait]
impl EmbeddingProvider for CandleBackend {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    async fn health(&self) -> Result<()> {
        let probe = self.encode(vec![String::new()], EncodeOptions::default()).await?;
        self.embed_encoded(probe, RequestContext::default()).await.map(drop)
    }

    async fn encode(&self, texts: Vec<String>, options: EncodeOptions) -> Result<Vec<Encoding>> {
        let tokenizers = Arc::clone(&self.tokenizers);
        tokio::task::spawn_blocking(move || tokenizers.encode(texts, options))
            .await
            .map_err(|e| EmbedError::Internal(format!("tokenization task failed: {e}")))?
    }

    async fn encode_pairs(&self, query: String, texts: Vec<String>, options: EncodeOptions) -> Result<Vec<Encoding>> {
        aki_core::check_task(&self.info, ModelTask::Rerank)?;
        let tokenizers = Arc::clone(&self.tokenizers);
        tokio::task::spawn_blocking(move || tokenizers.encode_pairs(&query, texts, options))
            .await
            .map_err(|e| EmbedError::Internal(format!("tokenization task failed: {e}")))?
    }

    async fn tokenize(&self, texts: Vec<String>, add_special_tokens: bool) -> Result<Vec<Vec<Token>>> {
        let tokenizers = Arc::clone(&self.tokenizers);
        tokio::task::spawn_blocking(move || tokenizers.tokenize(texts, add_special_tokens))
            .await
            .map_err(|e| EmbedError::Internal(format!("tokenization task failed: {e}")))?
    }

    async fn embed_encoded(&self, batch: Vec<Encoding>, context: RequestContext) -> Result<Pooled> {
        if batch.is_empty() {
            return Ok(Pooled::default());
        }
        self.check(&batch)?;
        if context.expired() {
            return Err(EmbedError::Timeout);
        }
        let started = std::time::Instant::now();
        let (reply, answer) = oneshot::channel();
        let job = Job { batch, reply, span: tracing::Span::current() };
        self.jobs.send(job).map_err(|_| EmbedError::Unavailable("the inference thread has stopped".into()))?;
        let vectors = answer.await.map_err(|_| EmbedError::Internal("the inference thread dropped a job".into()))??;
        Ok(Pooled { vectors, timing: Timing { inference: started.elapsed(), ..Timing::default() } })
    }
}
