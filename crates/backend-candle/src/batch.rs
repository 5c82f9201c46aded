//! What every candle model does around its layers: find its weights, pad a batch into tensors,
//! and pool the token vectors of the kept positions into one vector per input, or return each
//! input's token vectors.

use aki_core::{Encoding, Pooling};
use candle_core::{D, DType, Device, IndexOp, Result, Tensor};
use candle_nn::VarBuilder;

/// What a forward pass returns for each input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The model's own output: the pooled vector, a classifier's logits, a SPLADE vector.
    Head,
    /// The last hidden state of each of its tokens, row after row (TEI's `embed_all`).
    Tokens,
}

/// A batch padded on the right to its longest input.
pub struct Padded {
    /// Token ids `(batch, len)`, u32.
    pub ids: Tensor,
    /// Segment ids `(batch, len)`, u32.
    pub type_ids: Tensor,
    /// 1 for a real token, 0 for padding, `(batch, len)`, u8.
    pub mask: Tensor,
    /// Each input's length.
    pub lengths: Vec<usize>,
}

impl Padded {
    /// Pads `batch` with `pad_id`; `None` for an empty batch.
    pub fn new(batch: &[&Encoding], pad_id: u32, device: &Device) -> Result<Option<Self>> {
        let Some(len) = batch.iter().map(|e| e.len()).max() else {
            return Ok(None);
        };
        let n = batch.len();
        let mut ids = Vec::with_capacity(n * len);
        let mut type_ids = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for e in batch {
            let pad = len - e.len();
            ids.extend(e.ids.iter().copied().chain(std::iter::repeat_n(pad_id, pad)));
            type_ids.extend(e.type_ids.iter().copied().chain(std::iter::repeat_n(0, pad)));
            mask.extend(std::iter::repeat_n(1u8, e.len()).chain(std::iter::repeat_n(0u8, pad)));
        }
        Ok(Some(Self {
            ids: Tensor::from_vec(ids, (n, len), device)?,
            type_ids: Tensor::from_vec(type_ids, (n, len), device)?,
            mask: Tensor::from_vec(mask, (n, len), device)?,
            lengths: batch.iter().map(|e| e.len()).collect(),
        }))
    }
}

/// Each input's own rows of `(batch, len, hidden)` token vectors, in f32: `len x hidden` values.
pub fn token_rows(hidden: &Tensor, padded: &Padded) -> Result<Vec<Vec<f32>>> {
    let hidden = hidden.to_dtype(DType::F32)?;
    let rows = padded.lengths.iter().enumerate().map(|(i, &len)| hidden.i(i)?.narrow(0, 0, len)?.flatten_all());
    rows.map(|row| row?.to_vec1()).collect()
}

/// What leaves a pooling model for `output`: `pooling` over the kept tokens, or every token's
/// vector.
pub fn finish(hidden: &Tensor, padded: &Padded, pooling: Pooling, output: Output) -> Result<Vec<Vec<f32>>> {
    match output {
        Output::Head => pool(hidden, padded, pooling)?.to_vec2(),
        Output::Tokens => token_rows(hidden, padded),
    }
}

/// Pools `(batch, len, hidden)` token vectors over the kept tokens of `padded`, in f32.
pub fn pool(hidden: &Tensor, padded: &Padded, pooling: Pooling) -> Result<Tensor> {
    // Accumulate in f32 so long sequences do not lose precision in half types.
    let hidden = hidden.to_dtype(DType::F32)?;
    match pooling {
        Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1),
        Pooling::LastToken => {
            let rows = padded.lengths.iter().enumerate().map(|(i, &len)| hidden.i((i, len - 1)));
            Tensor::stack(&rows.collect::<Result<Vec<_>>>()?, 0)
        }
        Pooling::Mean => {
            let mask = padded.mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
            let counts = mask.sum(1)?.clamp(1f32, f32::MAX)?;
            summed.broadcast_div(&counts)
        }
        Pooling::Splade => {
            // `hidden` holds the masked-LM logits: log(1 + ReLU) is never negative, so padding
            // zeroed by the mask never wins the max.
            let mask = padded.mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            (hidden.relu()? + 1.0)?.log()?.broadcast_mul(&mask)?.max(D::Minus2)
        }
        Pooling::Max => {
            let mask = padded.mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            // Masked positions get a very low value so they never win the max.
            let penalty = mask.affine(1e9, -1e9)?;
            hidden.broadcast_add(&penalty)?.max(D::Minus2)
        }
    }
}

/// `(1 - mask) * lowest finite value` in `dtype`, shaped `(batch, 1, 1, len)` to broadcast over
/// heads and query positions. Using the dtype's finite minimum (not `f32::MIN`, which is `-inf`
/// in f16/bf16) keeps `0 * min` at zero instead of NaN.
pub fn additive_mask(mask: &Tensor, dtype: DType) -> Result<Tensor> {
    let lowest = match dtype {
        DType::F16 => f64::from(half::f16::MIN),
        DType::BF16 => f64::from(half::bf16::MIN),
        DType::F64 => f64::MIN,
        _ => f64::from(f32::MIN),
    };
    let (n, len) = mask.dims2()?;
    mask.to_dtype(dtype)?.affine(-lowest, lowest)?.reshape((n, 1, 1, len))
}

/// `vb`, reading names that start with `model.` without it when the file has no such prefix
/// (sentence-transformers saves the bare encoder; candle-transformers asks with the prefix).
pub fn with_model_prefix(vb: VarBuilder<'static>, probe: &str) -> VarBuilder<'static> {
    if vb.contains_tensor(probe) {
        return vb;
    }
    vb.rename_f(|name: &str| name.strip_prefix("model.").unwrap_or(name).to_string())
}
