//! Building a [`PackedBert`] from a checkpoint: which models the packed path takes
//! ([`unsupported`]), the encoder's weights copied into its layout, the compute pool started, and
//! a cross-encoder's classifier or a SPLADE model's masked-LM head added.

use aki_core::Pooling;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, HiddenAct, PositionEmbeddingType};

use super::isa::Isa;
use super::kernels::Activation;
use super::linear::Panels;
use super::splade::Splade;
use super::{Classifier, Head, Layer, Linear, Norm, PackedBert, Precision};
use crate::bert::Family;
use crate::mlm::MlmHead;

/// Why a model cannot take the packed path (it then runs on candle-transformers).
pub fn unsupported(config: &Config, device: &Device, dtype: DType) -> Option<String> {
    if !device.is_cpu() {
        Some("the device is not the CPU".into())
    } else if !matches!(dtype, DType::F32 | DType::F16 | DType::BF16) {
        Some(format!("the dtype is {dtype:?}, not f32, f16 or bf16"))
    } else if config.position_embedding_type != PositionEmbeddingType::Absolute {
        Some("position embeddings are not absolute".into())
    } else if !config.hidden_size.is_multiple_of(config.num_attention_heads) {
        Some("the hidden size is not a multiple of the head count".into())
    } else {
        None
    }
}

impl PackedBert {
    /// Copies the weights of a BERT or XLM-RoBERTa encoder (`family`) out of `vb` (f32,
    /// accepting the family's prefix) into the packed layout, the linear layers in `precision`,
    /// and starts a compute pool of `threads` threads (all cores when `None`); kernels use `isa`.
    #[allow(clippy::too_many_arguments)]
    pub fn load(
        vb: VarBuilder,
        config: &Config,
        family: Family,
        pooling: Pooling,
        threads: Option<usize>,
        precision: Precision,
        isa: Isa,
    ) -> candle_core::Result<Self> {
        let vb = family.encoder(vb);
        // XLM-RoBERTa's first token sits at the padding index + 1: keep the table from there.
        let first_position = family.first_position(config.pad_token_id);
        let hidden = config.hidden_size;
        let flat = |t: Tensor| t.flatten_all()?.to_vec1::<f32>();
        let emb = vb.pp("embeddings");
        let norm = |vb: VarBuilder| -> candle_core::Result<Norm> {
            Ok(Norm { gain: flat(vb.get(hidden, "weight")?)?, bias: flat(vb.get(hidden, "bias")?)? })
        };
        let linear = |vbs: &[VarBuilder], inputs: usize, outputs: usize| -> candle_core::Result<Linear> {
            let weights =
                vbs.iter().map(|vb| vb.get((outputs, inputs), "weight")).collect::<candle_core::Result<Vec<_>>>()?;
            let biases = vbs.iter().map(|vb| vb.get(outputs, "bias")).collect::<candle_core::Result<Vec<_>>>()?;
            linear(&weights, &biases, precision, isa)
        };
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let vb = vb.pp(format!("encoder.layer.{i}"));
                let attn = vb.pp("attention");
                let qkv = ["query", "key", "value"].map(|name| attn.pp("self").pp(name));
                Ok(Layer {
                    // In int8 their products cost the gate most (softmax sharpens their errors):
                    // the activations go in as two bytes (`Panels::with_two_byte_activations`).
                    qkv: linear(&qkv, hidden, hidden)
                        .map(|l| Linear { weights: l.weights.with_two_byte_activations(), ..l })?,
                    attention_out: linear(&[attn.pp("output.dense")], hidden, hidden)?,
                    attention_norm: norm(attn.pp("output.LayerNorm"))?,
                    intermediate: linear(&[vb.pp("intermediate.dense")], hidden, config.intermediate_size)?,
                    output: linear(&[vb.pp("output.dense")], config.intermediate_size, hidden)?,
                    output_norm: norm(vb.pp("output.LayerNorm"))?,
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("aki-compute-{i}"))
            .build()
            .map_err(|e| candle_core::Error::Msg(format!("cannot start the compute pool: {e}")))?;
        Ok(Self {
            words: flat(emb.get((config.vocab_size, hidden), "word_embeddings.weight")?)?,
            positions: flat(emb.get((config.max_position_embeddings, hidden), "position_embeddings.weight")?)?
                .split_off(first_position * hidden),
            token_types: flat(emb.get((config.type_vocab_size, hidden), "token_type_embeddings.weight")?)?,
            embedding_norm: norm(emb.pp("LayerNorm"))?,
            layers,
            hidden,
            heads: config.num_attention_heads,
            eps: config.layer_norm_eps as f32,
            activation: activation(config.hidden_act),
            pooling,
            head: Head::Pool,
            precision,
            isa,
            pool,
        })
    }

    /// The model as a cross-encoder: outputs become the `labels` logits of the classifier that
    /// `family` keeps in `vb` (the file's root, f32) on the first token.
    pub fn with_classifier(mut self, vb: &VarBuilder, family: Family, labels: usize) -> candle_core::Result<Self> {
        let h = self.hidden;
        let flat = |t: Tensor| t.flatten_all()?.to_vec1::<f32>();
        let (dense, out) = family.classifier(vb);
        self.head = Head::Classifier(Classifier {
            dense: flat(dense.get((h, h), "weight")?)?,
            dense_bias: flat(dense.get(h, "bias")?)?,
            out: flat(out.get((labels, h), "weight")?)?,
            out_bias: flat(out.get(labels, "bias")?)?,
        });
        self.pooling = Pooling::Cls;
        Ok(self)
    }

    /// The model as a SPLADE model: outputs become the SPLADE vectors of the masked-LM head
    /// that `family` keeps in `vb` (the file's root, f32), its products in the model's
    /// precision.
    pub fn with_splade(mut self, vb: &VarBuilder, config: &Config, family: Family) -> candle_core::Result<Self> {
        let head = MlmHead::load(vb, config, family)?;
        let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
        let (gain, bias, _) = &head.norm;
        self.head = Head::Splade(Splade {
            dense: linear(
                std::slice::from_ref(&head.dense.0),
                std::slice::from_ref(&head.dense.1),
                self.precision,
                self.isa,
            )?,
            activation: activation(head.activation),
            norm: Norm { gain: flat(gain)?, bias: flat(bias)? },
            decoder: linear(
                std::slice::from_ref(&head.decoder.0),
                std::slice::from_ref(&head.decoder.1),
                self.precision,
                self.isa,
            )?,
        });
        self.pooling = Pooling::Splade;
        Ok(self)
    }
}

/// A linear layer from the weights `(outputs, inputs)` of one or more layers side by side and
/// their biases, transposed and cut into panels of `precision` laid out for `isa`.
fn linear(weights: &[Tensor], biases: &[Tensor], precision: Precision, isa: Isa) -> candle_core::Result<Linear> {
    let flat = |t: Tensor| t.flatten_all()?.to_vec1::<f32>();
    let weight = Tensor::cat(weights, 0)?;
    let (outputs, inputs) = weight.dims2()?;
    let weight_t = flat(weight.t()?.contiguous()?)?;
    let weights = match precision {
        Precision::F32 => Panels::f32(isa, &weight_t, inputs, outputs),
        Precision::F16 => Panels::f16(&weight_t, inputs, outputs),
        Precision::Bf16 => Panels::bf16(&weight_t, inputs, outputs),
        Precision::Int8 => Panels::int8(isa, &weight_t, inputs, outputs),
    };
    Ok(Linear { weights, bias: flat(Tensor::cat(biases, 0)?)?, outputs })
}

fn activation(act: HiddenAct) -> Activation {
    match act {
        HiddenAct::Gelu => Activation::Gelu,
        HiddenAct::GeluApproximate => Activation::GeluTanh,
        HiddenAct::Relu => Activation::Relu,
    }
}
