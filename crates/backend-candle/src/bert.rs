//! The BERT encoder and pooling on candle: embeddings and an attention mask that are safe in
//! half precision, candle-transformers' encoder layers, then masked pooling.

use aki_core::{Encoding, Pooling};
use candle_core::{D, DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, LayerNorm, VarBuilder, embedding, layer_norm};
use candle_transformers::models::bert::{BertEncoder, Config};

/// Word, position and token-type embeddings followed by LayerNorm.
struct Embeddings {
    words: Embedding,
    positions: Embedding,
    token_types: Embedding,
    norm: LayerNorm,
}

impl Embeddings {
    fn load(vb: VarBuilder, config: &Config) -> Result<Self> {
        Ok(Self {
            words: embedding(config.vocab_size, config.hidden_size, vb.pp("word_embeddings"))?,
            positions: embedding(config.max_position_embeddings, config.hidden_size, vb.pp("position_embeddings"))?,
            token_types: embedding(config.type_vocab_size, config.hidden_size, vb.pp("token_type_embeddings"))?,
            norm: layer_norm(config.hidden_size, config.layer_norm_eps, vb.pp("LayerNorm"))?,
        })
    }

    fn forward(&self, ids: &Tensor, type_ids: &Tensor) -> Result<Tensor> {
        let (_, len) = ids.dims2()?;
        let positions = Tensor::arange(0u32, len as u32, ids.device())?;
        let x = (self.words.forward(ids)? + self.token_types.forward(type_ids)?)?;
        let x = x.broadcast_add(&self.positions.forward(&positions)?)?;
        self.norm.forward(&x)
    }
}

/// A BERT encoder with its pooling.
pub struct BertEmbedder {
    embeddings: Embeddings,
    encoder: BertEncoder,
    pooling: Pooling,
    pad_id: u32,
    device: Device,
    dtype: DType,
}

impl BertEmbedder {
    /// Builds the model from `vb`, accepting weights with or without a `bert.` prefix.
    pub fn load(vb: VarBuilder, config: &Config, pooling: Pooling) -> Result<Self> {
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") { vb.pp("bert") } else { vb };
        Ok(Self {
            embeddings: Embeddings::load(vb.pp("embeddings"), config)?,
            encoder: BertEncoder::load(vb.pp("encoder"), config)?,
            pooling,
            pad_id: config.pad_token_id as u32,
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// Runs one padded batch and returns one pooled (not normalised) f32 vector per input.
    pub fn forward(&self, batch: &[&Encoding]) -> Result<Vec<Vec<f32>>> {
        let Some(len) = batch.iter().map(|e| e.len()).max() else {
            return Ok(Vec::new());
        };
        let n = batch.len();
        let mut ids = Vec::with_capacity(n * len);
        let mut type_ids = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for e in batch {
            let pad = len - e.len();
            ids.extend(e.ids.iter().copied().chain(std::iter::repeat_n(self.pad_id, pad)));
            type_ids.extend(e.type_ids.iter().copied().chain(std::iter::repeat_n(0, pad)));
            mask.extend(std::iter::repeat_n(1u8, e.len()).chain(std::iter::repeat_n(0u8, pad)));
        }
        let ids = Tensor::from_vec(ids, (n, len), &self.device)?;
        let type_ids = Tensor::from_vec(type_ids, (n, len), &self.device)?;
        let mask = Tensor::from_vec(mask, (n, len), &self.device)?.to_dtype(self.dtype)?;

        let hidden = self.embeddings.forward(&ids, &type_ids)?;
        let hidden = self.encoder.forward(&hidden, &additive_mask(&mask)?)?;
        let pooled = pool(&hidden, &mask, self.pooling)?;
        pooled.to_dtype(DType::F32)?.to_vec2()
    }
}

/// `(1 - mask) * lowest finite value`, shaped `(batch, 1, 1, len)` to broadcast over heads and
/// query positions. Using the dtype's finite minimum (not `f32::MIN`, which is `-inf` in
/// f16/bf16) keeps `0 * min` at zero instead of NaN.
fn additive_mask(mask: &Tensor) -> Result<Tensor> {
    let lowest = match mask.dtype() {
        DType::F16 => f64::from(half::f16::MIN),
        DType::BF16 => f64::from(half::bf16::MIN),
        DType::F64 => f64::MIN,
        _ => f64::from(f32::MIN),
    };
    let (n, len) = mask.dims2()?;
    mask.affine(-lowest, lowest)?.reshape((n, 1, 1, len))
}

/// Pools `(batch, len, hidden)` token vectors over the kept tokens of `mask` `(batch, len)`.
fn pool(hidden: &Tensor, mask: &Tensor, pooling: Pooling) -> Result<Tensor> {
    match pooling {
        Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1),
        Pooling::Mean => {
            // Accumulate in f32 so long sequences do not lose precision in half types.
            let hidden = hidden.to_dtype(DType::F32)?;
            let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
            let counts = mask.sum(1)?.clamp(1f32, f32::MAX)?;
            summed.broadcast_div(&counts)
        }
        Pooling::Max => {
            let hidden = hidden.to_dtype(DType::F32)?;
            let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            // Masked positions get a very low value so they never win the max.
            let penalty = mask.affine(1e9, -1e9)?;
            hidden.broadcast_add(&penalty)?.max(D::Minus2)
        }
    }
}
