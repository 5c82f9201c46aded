//! The packed CPU path: a BERT encoder forward pass that wastes nothing on padding.
//!
//! The tokens of every sequence in a batch sit in one `(tokens, hidden)` matrix, so the
//! embedding, QKV, output and feed-forward projections (about 90% of the work) multiply only
//! real tokens; attention runs per sequence and head on that sequence's own length; pooling
//! uses each sequence's offsets. Biases and residuals are the starting value of the matrix
//! multiply that adds onto them, GELU and layer norm run in place in one pass, and everything
//! runs on one rayon pool the model owns. The linear layers keep one copy of their weights, in
//! f32, f16, bf16 or int8 (`linear/panels.rs`); the kernels use the instruction sets of the
//! model's `Isa`.
//!
//! The parts: loading a model (`load.rs`), the linear layers' products (`linear/`), attention of
//! long sequences and f32 products of many rows through the `gemm` crate (`gemm.rs`), the
//! element-wise kernels and short attention (`kernels.rs`), and the instruction sets (`isa.rs`).
//! This file is the model and its forward pass.

mod gemm;
pub mod isa;
mod kernels;
mod linear;
mod load;
mod splade;

use aki_core::{Encoding, Pooling};
use rayon::prelude::*;

use self::gemm::{View, matmul};
use self::isa::{Isa, Level};
use self::kernels::{Activation, add_rows, fill_rows, layer_norm, softmax_rows};
use self::linear::Panels;
pub use self::load::unsupported;
use self::splade::Splade;
use crate::batch::Output;

/// A linear layer: one copy of its weights, transposed to `(in, out)` and cut into panels (f32,
/// f16 or bf16, see `linear/panels.rs`), and its bias.
struct Linear {
    weights: Panels,
    bias: Vec<f32>,
    outputs: usize,
}

impl Linear {
    fn bytes(&self) -> usize {
        self.weights.bytes() + self.bias.len() * 4
    }
}

/// The precision of the linear layers' weights (everything else stays f32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// f32 weights, f32 products.
    F32,
    /// f16 weights (half the bytes), expanded exactly to f32 as the kernels load them: f32
    /// activations and products.
    F16,
    /// bf16 weights, activations rounded to bf16 at each multiply, f32 accumulation.
    Bf16,
    /// int8 weights with a scale per output, activations rounded to int8 with a scale per row at
    /// each multiply, exact `i32` accumulation (W8A8).
    Int8,
}

impl Precision {
    /// `f32`, `f16`, `bf16` or `int8`, for `/info` and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Bf16 => "bf16",
            Self::Int8 => "int8",
        }
    }
}

struct Norm {
    gain: Vec<f32>,
    bias: Vec<f32>,
}

struct Layer {
    /// Query, key and value projections side by side: `(hidden, 3 * hidden)`.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: Norm,
    intermediate: Linear,
    output: Linear,
    output_norm: Norm,
}

/// A cross-encoder's classifier on the first token: `out · tanh(dense · x + b) + b'`.
struct Classifier {
    /// `(hidden, hidden)`, row `i` the weights of output `i`.
    dense: Vec<f32>,
    dense_bias: Vec<f32>,
    /// `(labels, hidden)`.
    out: Vec<f32>,
    out_bias: Vec<f32>,
}

impl Classifier {
    fn logits(&self, first: &[f32]) -> Vec<f32> {
        let dot = |w: &[f32], x: &[f32]| w.iter().zip(x).map(|(a, b)| a * b).sum::<f32>();
        let h = first.len();
        let pooled: Vec<f32> =
            self.dense.chunks_exact(h).zip(&self.dense_bias).map(|(w, b)| (dot(w, first) + b).tanh()).collect();
        self.out.chunks_exact(h).zip(&self.out_bias).map(|(w, b)| dot(w, &pooled) + b).collect()
    }
}

/// What turns the last hidden states into the model's output.
enum Head {
    /// A sentence embedder's pooling.
    Pool,
    /// A cross-encoder's classifier on the first token.
    Classifier(Classifier),
    /// A SPLADE model's masked-LM head and SPLADE pooling.
    Splade(Splade),
}

/// A BERT-family encoder with its pooling, a cross-encoder's classifier or a SPLADE model's
/// head, on the packed CPU path.
pub struct PackedBert {
    words: Vec<f32>,
    positions: Vec<f32>,
    token_types: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    hidden: usize,
    heads: usize,
    eps: f32,
    activation: Activation,
    pooling: Pooling,
    head: Head,
    precision: Precision,
    isa: Isa,
    pool: rayon::ThreadPool,
}

/// Up to this many tokens a sequence's attention runs in the model's own loops even on AVX-512:
/// `gemm`'s set-up costs more than the products (one short sentence, bf16: 3.4 ms a call
/// against 3.6 ms through `gemm`, same session, interleaved).
const SHORT_ATTENTION: usize = 64;

impl PackedBert {
    /// The instruction sets its kernels use.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The precision of its linear layers.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Bytes of weights this model keeps.
    pub fn bytes(&self) -> u64 {
        let norm = |n: &Norm| (n.gain.len() + n.bias.len()) * 4;
        let layers: usize = self
            .layers
            .iter()
            .map(|l| {
                l.qkv.bytes()
                    + l.attention_out.bytes()
                    + l.intermediate.bytes()
                    + l.output.bytes()
                    + norm(&l.attention_norm)
                    + norm(&l.output_norm)
            })
            .sum();
        let embeddings =
            (self.words.len() + self.positions.len() + self.token_types.len()) * 4 + norm(&self.embedding_norm);
        let head = match &self.head {
            Head::Pool => 0,
            Head::Classifier(c) => (c.dense.len() + c.dense_bias.len() + c.out.len() + c.out_bias.len()) * 4,
            Head::Splade(splade) => splade.bytes(),
        };
        (layers + embeddings + head) as u64
    }

    /// Runs one batch and returns per input its pooled (not normalised) vector, a
    /// cross-encoder's logits or a SPLADE vector; or, for [`Output::Tokens`], its token vectors.
    /// Inputs must be non-empty and within the position table (the backend checks both first).
    pub fn forward(&self, batch: &[&Encoding], output: Output) -> Vec<Vec<f32>> {
        if batch.is_empty() {
            return Vec::new();
        }
        self.pool.install(|| self.forward_in_pool(batch, output))
    }

    fn forward_in_pool(&self, batch: &[&Encoding], output: Output) -> Vec<Vec<f32>> {
        let threads = rayon::current_num_threads();
        let h = self.hidden;
        let offsets: Vec<usize> = std::iter::once(0)
            .chain(batch.iter().scan(0, |end, e| {
                *end += e.len();
                Some(*end)
            }))
            .collect();
        let tokens = offsets[batch.len()];

        let mut x = self.embed(batch, tokens);
        let widest = self.layers.iter().map(|l| l.intermediate.outputs.max(l.qkv.outputs)).max().unwrap_or(h);
        let mut wide = vec![0.0f32; tokens * widest];
        let mut context = vec![0.0f32; tokens * h];
        let mut mid = vec![0.0f32; tokens * h];
        let chunk = self.chunk_rows(tokens, threads);
        for layer in &self.layers {
            // Attention: QKV projection of every token at once, then per sequence and head.
            let qkv = &mut wide[..tokens * layer.qkv.outputs];
            project(self.isa, qkv, &x, &layer.qkv, threads, None);
            self.attend(qkv, &offsets, &mut context);
            match chunk {
                // Many rows: the rest of the layer one chunk of rows at a time, each on one
                // thread, so its feed-forward activations stay in that core's cache.
                Some(rows) => x
                    .par_chunks_mut(rows * h)
                    .zip(mid.par_chunks_mut(rows * h))
                    .zip(context.par_chunks(rows * h))
                    .for_each(|((x, mid), context)| {
                        let mut inner = vec![0.0f32; x.len() / h * layer.intermediate.outputs];
                        self.finish_layer(layer, x, mid, context, &mut inner, 1);
                    }),
                None => self.finish_layer(
                    layer,
                    &mut x,
                    &mut mid,
                    &context,
                    &mut wide[..tokens * layer.intermediate.outputs],
                    threads,
                ),
            }
        }
        match (&self.head, output) {
            (_, Output::Tokens) => offsets.windows(2).map(|w| x[w[0] * h..w[1] * h].to_vec()).collect(),
            (Head::Pool, Output::Head) => self.pool_sequences(&x, &offsets),
            (Head::Classifier(classifier), Output::Head) => {
                self.pool_sequences(&x, &offsets).iter().map(|first| classifier.logits(first)).collect()
            }
            (Head::Splade(splade), Output::Head) => splade.vectors(self.isa, &x, &offsets, self.eps, threads),
        }
    }

    /// After attention, for the rows of `x` (the layer's input, overwritten with its output):
    /// the output projection onto (residual + bias) and layer norm into `mid`; the feed-forward,
    /// (bias + mid·W1) then the activation in `inner`, (residual + bias) + inner·W2, and layer
    /// norm into `x`.
    fn finish_layer(
        &self,
        layer: &Layer,
        x: &mut [f32],
        mid: &mut [f32],
        context: &[f32],
        inner: &mut [f32],
        threads: usize,
    ) {
        add_rows(mid, x, &layer.attention_out.bias);
        accumulate(self.isa, mid, context, &layer.attention_out, threads);
        layer_norm(self.isa, mid, &layer.attention_norm.gain, &layer.attention_norm.bias, self.eps);
        project(self.isa, inner, mid, &layer.intermediate, threads, Some(self.activation));
        add_rows(x, mid, &layer.output.bias);
        accumulate(self.isa, x, inner, &layer.output, threads);
        layer_norm(self.isa, x, &layer.output_norm.gain, &layer.output_norm.bias, self.eps);
    }

    /// Rows of one chunk when the second half of each layer runs a chunk of rows per task: bf16
    /// weights only (f32 products of many rows go through `gemm`, which repacks the weights on
    /// every call), and only with at least two full chunks of rows per thread. The chunks are
    /// the ones a product of the same rows would make (`linear::row_chunks`).
    fn chunk_rows(&self, tokens: usize, threads: usize) -> Option<usize> {
        let chunk = linear::CHUNK_TILES * linear::ROWS;
        (self.precision == Precision::Bf16 && tokens >= 2 * threads * chunk)
            .then(|| linear::row_chunks(tokens.div_ceil(linear::ROWS), threads).1 * linear::ROWS)
    }

    /// Word + position + token-type embeddings of every token, layer-normed: `(tokens, hidden)`.
    fn embed(&self, batch: &[&Encoding], tokens: usize) -> Vec<f32> {
        let h = self.hidden;
        let mut x = Vec::with_capacity(tokens * h);
        for e in batch {
            for (position, (&id, &kind)) in e.ids.iter().zip(&e.type_ids).enumerate() {
                let word = &self.words[id as usize * h..][..h];
                let pos = &self.positions[position * h..][..h];
                let kind = &self.token_types[kind as usize * h..][..h];
                x.extend(word.iter().zip(pos).zip(kind).map(|((w, p), k)| w + p + k));
            }
        }
        layer_norm(self.isa, &mut x, &self.embedding_norm.gain, &self.embedding_norm.bias, self.eps);
        x
    }

    /// Scaled dot-product attention of each sequence and head over its own tokens, written to
    /// `context` `(tokens, hidden)`, heads side by side: in the model's own loops for short
    /// sequences and below AVX-512 (`gemm` picks its instructions itself, and an ISA cap must
    /// hold), through `gemm` for longer ones on AVX-512.
    fn attend(&self, qkv: &[f32], offsets: &[usize], context: &mut [f32]) {
        let (h, heads) = (self.hidden, self.heads);
        let d = h / heads;
        let scale = 1.0 / (d as f32).sqrt();
        let stride = 3 * h;
        let jobs: Vec<(usize, usize)> =
            (0..offsets.len() - 1).flat_map(|s| (0..heads).map(move |head| (s, head))).collect();
        let outputs: Vec<Vec<f32>> = jobs
            .par_iter()
            .map(|&(s, head)| {
                let (start, len) = (offsets[s], offsets[s + 1] - offsets[s]);
                let part = |p: usize| &qkv[start * stride + p * h + head * d..];
                let mut out = vec![0.0f32; len * d];
                if self.isa.level() < Level::Avx512 || len <= SHORT_ATTENTION {
                    kernels::attend(self.isa, part(0), part(1), part(2), len, d, stride, scale, &mut out);
                } else {
                    let mut scores = vec![0.0f32; len * len];
                    let at = |p: usize| View { data: part(p), rows: len, cols: d, row_stride: stride, col_stride: 1 };
                    matmul(&mut scores, at(0), at(1).t(), scale, false, 1);
                    softmax_rows(self.isa, &mut scores, len);
                    matmul(&mut out, View::rows(&scores, len, len), at(2), 1.0, false, 1);
                }
                out
            })
            .collect();
        for (&(s, head), out) in jobs.iter().zip(outputs) {
            for (row, values) in out.chunks_exact(d).enumerate() {
                context[(offsets[s] + row) * h + head * d..][..d].copy_from_slice(values);
            }
        }
    }

    /// One vector per sequence from its rows of `x`.
    fn pool_sequences(&self, x: &[f32], offsets: &[usize]) -> Vec<Vec<f32>> {
        let h = self.hidden;
        offsets
            .windows(2)
            .map(|w| {
                let rows = x[w[0] * h..w[1] * h].chunks_exact(h);
                match self.pooling {
                    Pooling::Cls => x[w[0] * h..][..h].to_vec(),
                    Pooling::LastToken => x[(w[1] - 1) * h..][..h].to_vec(),
                    Pooling::Mean => {
                        let mut sum = vec![0.0f32; h];
                        for row in rows {
                            sum.iter_mut().zip(row).for_each(|(s, v)| *s += v);
                        }
                        let n = (w[1] - w[0]).max(1) as f32;
                        sum.iter_mut().for_each(|s| *s /= n);
                        sum
                    }
                    // Rows read as logits; a SPLADE model's head pools its own (`splade.rs`).
                    Pooling::Splade => rows.fold(vec![0.0f32; h], |mut m, row| {
                        splade::keep_max(&mut m, row);
                        m
                    }),
                    Pooling::Max => rows.fold(vec![f32::NEG_INFINITY; h], |mut m, row| {
                        m.iter_mut().zip(row).for_each(|(m, v)| *m = m.max(*v));
                        m
                    }),
                }
            })
            .collect()
    }
}

/// `out = act(bias + x · W)` for every token row of `x` (no activation when `act` is `None`).
fn project(isa: Isa, out: &mut [f32], x: &[f32], linear: &Linear, threads: usize, act: Option<Activation>) {
    fill_rows(out, &linear.bias);
    linear::accumulate(isa, out, x, &linear.weights, threads, act);
}

/// `out += x · W` for every token row of `x`.
fn accumulate(isa: Isa, out: &mut [f32], x: &[f32], linear: &Linear, threads: usize) {
    linear::accumulate(isa, out, x, &linear.weights, threads, None);
}
