//! Qwen3 decoders used as embedders (Qwen3-Embedding) on candle-transformers' Qwen3: causal
//! attention and last-token pooling.
//!
//! Inputs are padded on the right. Under a causal mask a real token never sees the padding after
//! it, and rotary positions only enter attention as differences, so each input's last real token
//! gets what sentence-transformers' left-padded batch gives it (the reference tests check both).

use aki_core::{Encoding, Pooling};
use candle_core::{Device, Result};
use candle_nn::{Activation, VarBuilder};
use candle_transformers::models::qwen3::{Config, Model};
use serde::Deserialize;

use crate::batch::{Output, Padded, finish, with_model_prefix};

/// `config.json` as transformers 4 (`rope_theta`) or 5 (`rope_parameters`) writes it.
#[derive(Deserialize)]
pub struct Qwen3Config {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    head_dim: Option<usize>,
    #[serde(default)]
    attention_bias: bool,
    num_key_value_heads: usize,
    max_position_embeddings: usize,
    rope_theta: Option<f64>,
    rope_parameters: Option<Rope>,
    rms_norm_eps: f64,
    hidden_act: Activation,
    pad_token_id: Option<u32>,
}

#[derive(Deserialize)]
struct Rope {
    rope_theta: f64,
}

impl Qwen3Config {
    fn candle(&self) -> Config {
        Config {
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            head_dim: self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads),
            attention_bias: self.attention_bias,
            num_key_value_heads: self.num_key_value_heads,
            max_position_embeddings: self.max_position_embeddings,
            sliding_window: None,
            max_window_layers: self.num_hidden_layers,
            tie_word_embeddings: false,
            rope_theta: self.rope_theta.or(self.rope_parameters.as_ref().map(|r| r.rope_theta)).unwrap_or(1_000_000.0),
            rms_norm_eps: self.rms_norm_eps,
            use_sliding_window: false,
            hidden_act: self.hidden_act,
        }
    }
}

/// A Qwen3 decoder with its pooling (last token for Qwen3-Embedding).
pub struct Qwen3Embedder {
    /// Never run itself: each batch runs a clone (the weights are shared, the key-value cache
    /// starts empty), since candle-transformers' model keeps a cache between calls.
    model: Model,
    pooling: Pooling,
    pad_id: u32,
    device: Device,
}

impl Qwen3Embedder {
    /// Builds the model from `vb`.
    pub fn load(vb: VarBuilder<'static>, config: &Qwen3Config, pooling: Pooling) -> Result<Self> {
        let vb = with_model_prefix(vb, "model.embed_tokens.weight");
        Ok(Self {
            model: Model::new(&config.candle(), vb.clone())?,
            pooling,
            pad_id: config.pad_token_id.unwrap_or(0),
            device: vb.device().clone(),
        })
    }

    /// Runs one right-padded batch and returns one pooled (not normalised) f32 vector per input,
    /// or its token vectors.
    pub fn forward(&self, batch: &[&Encoding], output: Output) -> Result<Vec<Vec<f32>>> {
        let Some(padded) = Padded::new(batch, self.pad_id, &self.device)? else {
            return Ok(Vec::new());
        };
        let hidden = self.model.clone().forward(&padded.ids, 0)?;
        finish(&hidden, &padded, self.pooling, output)
    }
}
