//! ModernBERT embedders on candle-transformers' ModernBERT (rotary positions, local and global
//! attention layers, GeGLU), with the config keys of every transformers version it was saved
//! by and weights with or without the `model.` prefix.

use aki_core::{Encoding, Pooling};
use candle_core::{Device, Result};
use candle_nn::VarBuilder;
use candle_transformers::models::modernbert::{Config, ModernBert};
use serde::Deserialize;

use crate::batch::{Output, Padded, finish, with_model_prefix};

/// `config.json` as transformers 4 (`global_rope_theta`) or 5 (`rope_parameters`) writes it.
#[derive(Deserialize)]
pub struct ModernBertConfig {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    max_position_embeddings: usize,
    norm_eps: Option<f64>,
    layer_norm_eps: Option<f64>,
    pad_token_id: u32,
    global_attn_every_n_layers: usize,
    local_attention: usize,
    global_rope_theta: Option<f64>,
    local_rope_theta: Option<f64>,
    rope_parameters: Option<RopeByLayerType>,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    mlp_bias: bool,
    #[serde(default)]
    norm_bias: bool,
}

#[derive(Deserialize)]
struct RopeByLayerType {
    full_attention: Rope,
    sliding_attention: Rope,
}

#[derive(Deserialize)]
struct Rope {
    rope_theta: f64,
}

impl ModernBertConfig {
    fn candle(&self) -> Result<Config> {
        if self.attention_bias || self.mlp_bias || self.norm_bias {
            candle_core::bail!("ModernBERT with bias terms (attention_bias, mlp_bias or norm_bias) is not supported");
        }
        let rope = |old: Option<f64>, new: Option<f64>, default: f64| old.or(new).unwrap_or(default);
        Ok(Config {
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            intermediate_size: self.intermediate_size,
            max_position_embeddings: self.max_position_embeddings,
            layer_norm_eps: self.norm_eps.or(self.layer_norm_eps).unwrap_or(1e-5),
            pad_token_id: self.pad_token_id,
            global_attn_every_n_layers: self.global_attn_every_n_layers,
            global_rope_theta: rope(
                self.global_rope_theta,
                self.rope_parameters.as_ref().map(|r| r.full_attention.rope_theta),
                160_000.0,
            ),
            local_attention: self.local_attention,
            local_rope_theta: rope(
                self.local_rope_theta,
                self.rope_parameters.as_ref().map(|r| r.sliding_attention.rope_theta),
                10_000.0,
            ),
            classifier_config: None,
        })
    }
}

/// A ModernBERT encoder with its pooling. Runs in f32: candle-transformers builds its attention
/// masks in f32.
pub struct ModernBertEmbedder {
    model: ModernBert,
    pooling: Pooling,
    pad_id: u32,
    device: Device,
}

impl ModernBertEmbedder {
    /// Builds the model from `vb` (f32).
    pub fn load(vb: VarBuilder<'static>, config: &ModernBertConfig, pooling: Pooling) -> Result<Self> {
        let vb = with_model_prefix(vb, "model.embeddings.tok_embeddings.weight");
        Ok(Self {
            model: ModernBert::load(vb.clone(), &config.candle()?)?,
            pooling,
            pad_id: config.pad_token_id,
            device: vb.device().clone(),
        })
    }

    /// Runs one padded batch and returns one pooled (not normalised) f32 vector per input, or
    /// its token vectors.
    pub fn forward(&self, batch: &[&Encoding], output: Output) -> Result<Vec<Vec<f32>>> {
        let Some(padded) = Padded::new(batch, self.pad_id, &self.device)? else {
            return Ok(Vec::new());
        };
        let hidden = self.model.forward(&padded.ids, &padded.mask)?;
        finish(&hidden, &padded, self.pooling, output)
    }
}
