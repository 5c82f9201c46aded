//! A SPLADE model's masked-LM head on the packed path: per token `decoder · norm(act(dense · x
//! + b)) + bias`, reduced as it goes to the maximum over each sequence's tokens of
//! `log(1 + ReLU(logit))`, so no more than a few rows of vocabulary-wide logits exist at once.

use super::isa::Isa;
use super::kernels::{Activation, layer_norm};
use super::{Linear, Norm, project};

/// Rows of logits computed at once (`rows x vocabulary` values).
const ROWS: usize = 64;

/// The masked-LM head of a SPLADE model.
pub(super) struct Splade {
    pub(super) dense: Linear,
    pub(super) activation: Activation,
    pub(super) norm: Norm,
    pub(super) decoder: Linear,
}

impl Splade {
    pub(super) fn bytes(&self) -> usize {
        self.dense.bytes() + self.decoder.bytes() + (self.norm.gain.len() + self.norm.bias.len()) * 4
    }

    /// One SPLADE vector (a value per vocabulary entry) per sequence of `x` `(tokens, hidden)`,
    /// whose sequences end at `offsets[1..]`.
    pub(super) fn vectors(&self, isa: Isa, x: &[f32], offsets: &[usize], eps: f32, threads: usize) -> Vec<Vec<f32>> {
        let h = self.dense.outputs;
        let vocab = self.decoder.outputs;
        let mut transformed = vec![0.0f32; x.len()];
        project(isa, &mut transformed, x, &self.dense, threads, Some(self.activation));
        layer_norm(isa, &mut transformed, &self.norm.gain, &self.norm.bias, eps);
        let mut logits = vec![0.0f32; ROWS * vocab];
        offsets
            .windows(2)
            .map(|w| {
                let mut best = vec![0.0f32; vocab];
                for rows in transformed[w[0] * h..w[1] * h].chunks(ROWS * h) {
                    let logits = &mut logits[..rows.len() / h * vocab];
                    project(isa, logits, rows, &self.decoder, threads, None);
                    for row in logits.chunks_exact(vocab) {
                        keep_max(&mut best, row);
                    }
                }
                best
            })
            .collect()
    }
}

/// SPLADE pooling of one row of logits into `best`: each entry the larger of itself and
/// `log(1 + ReLU(logit))`.
pub(super) fn keep_max(best: &mut [f32], logits: &[f32]) {
    best.iter_mut().zip(logits).for_each(|(b, l)| *b = b.max(l.max(0.0).ln_1p()));
}
