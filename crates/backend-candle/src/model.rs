//! The forward pass a backend runs, and how it is chosen and loaded from a model's files: the
//! packed CPU path or candle-transformers.

use std::path::Path;

use aki_core::{EmbedError, Encoding, ModelTask, Pooling, Result};
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config as BertConfig;

use crate::batch::Output;
use crate::bert::{BertEmbedder, Family};
use crate::config::CandleConfig;
use crate::layout::{Architecture, ModelLayout};
use crate::modernbert::{ModernBertConfig, ModernBertEmbedder};
use crate::packed::{self, PackedBert, Precision};
use crate::qwen3::{Qwen3Config, Qwen3Embedder};

/// The forward pass a backend runs: the packed CPU path (BERT-layer embedders and
/// cross-encoders), or candle-transformers (every other device, dtype and family; also the
/// reference).
pub(crate) enum Model {
    Packed(PackedBert),
    Bert(BertEmbedder),
    ModernBert(ModernBertEmbedder),
    Qwen3(Qwen3Embedder),
}

impl Model {
    pub(crate) fn forward(&self, batch: &[&Encoding], output: Output) -> Result<Vec<Vec<f32>>> {
        let out = match self {
            Self::Packed(model) => return Ok(model.forward(batch, output)),
            Self::Bert(model) => model.forward(batch, output),
            Self::ModernBert(model) => model.forward(batch, output),
            Self::Qwen3(model) => model.forward(batch, output),
        };
        out.map_err(|e| EmbedError::Backend(e.to_string()))
    }

    /// The dtype it really runs in, given the one asked for.
    pub(crate) fn dtype(&self, asked: DType) -> DType {
        if matches!(self, Self::ModernBert(_)) { DType::F32 } else { asked }
    }
}

/// Whether the packed CPU path can run this model at all: the BERT-layer families, embedders
/// and cross-encoders.
pub(crate) fn packable(layout: &ModelLayout) -> bool {
    matches!(layout.architecture, Architecture::Bert | Architecture::XlmRoberta)
}

pub(crate) fn load_weights(
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
    if config.int8() && !packable(layout) {
        let architecture = layout.architecture.as_str();
        return Err(EmbedError::Load(format!(
            "backend.dtype = \"int8\" runs on the packed CPU path only, not {architecture}"
        )));
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
    let splade = layout.pooling == Pooling::Splade;
    let packed = packed::unsupported(&bert, device, dtype);
    match packed {
        None if config.packed => {
            // The packed path reads f32 and rounds the linear layers itself when it keeps them
            // in f16, bf16 or int8.
            let precision = match dtype {
                _ if config.int8() => Precision::Int8,
                DType::BF16 => Precision::Bf16,
                DType::F16 => Precision::F16,
                _ => Precision::F32,
            };
            let isa = config.isa()?;
            if precision == Precision::Bf16 && !isa.bf16() {
                tracing::warn!(isa = %isa.describe(), "bf16 weights without AVX-512 BF16: the products run in plain code, slower than f32");
            }
            let vb = mmap(DType::F32)?;
            let model = PackedBert::load(vb.clone(), &bert, family, layout.pooling, config.threads, precision, isa);
            let model = if rerank {
                model.and_then(|m| m.with_classifier(&vb, family, layout.labels.len()))
            } else if splade {
                model.and_then(|m| m.with_splade(&vb, &bert, family))
            } else {
                model
            };
            model.map(Model::Packed).map_err(err)
        }
        reason => {
            if config.int8() {
                let why = reason.unwrap_or_else(|| "backend.packed is false".into());
                return Err(EmbedError::Load(format!(
                    "backend.dtype = \"int8\" runs on the packed CPU path only: {why}"
                )));
            }
            if let (true, Some(reason)) = (config.packed, reason) {
                tracing::info!(%reason, "using candle-transformers instead of the packed CPU path");
            }
            let vb = mmap(dtype)?;
            let model = if rerank {
                BertEmbedder::load_classifier(vb, &bert, family, layout.labels.len())
            } else if splade {
                BertEmbedder::load_splade(vb, &bert, family)
            } else {
                BertEmbedder::load(vb, &bert, family, layout.pooling)
            };
            model.map(Model::Bert).map_err(err)
        }
    }
}
