//! The linear layers' weights as the tiles stream them: `W` `(k, n)` in panels of 64 columns,
//! in f32 (kept row-major, rows padded with zeros to whole panels) or in bf16 (contiguous pair
//! panels, rows `2i` and `2i + 1` interleaved column by column).

use half::bf16;

use super::COLS;

/// The values of the panels.
pub(super) enum Values {
    F32(Vec<f32>),
    /// Pairs of bf16 bits, row `2i` in the low half.
    Bf16(Vec<u32>),
}

/// A `(k, n)` weight matrix in panels of 64 columns (`n` padded with zero columns).
pub struct Panels {
    pub(super) values: Values,
    pub(super) k: usize,
    pub(super) n: usize,
    /// Steps along `k` of one panel: `k` in f32, `k / 2` rounded up in bf16.
    pub(super) steps: usize,
}

impl Panels {
    /// `w`, `(k, n)` row-major, in f32: kept row-major (rows padded with zeros to whole panels)
    /// so `gemm` reads it as it is, and a panel is 64 columns of it, rows a full row apart.
    pub fn f32(w: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(w.len(), k * n, "matrix size differs");
        let ld = n.next_multiple_of(COLS);
        let mut data = vec![0.0f32; k * ld];
        for (row, values) in data.chunks_exact_mut(ld).zip(w.chunks_exact(n)) {
            row[..n].copy_from_slice(values);
        }
        Self { values: Values::F32(data), k, n, steps: k }
    }

    /// Panel `p`'s steps `s0..s0 + steps` as the tiles read them, with the distance between
    /// steps: a slice of the row-major f32 matrix, or of a contiguous bf16 panel.
    pub(super) fn weights(&self, p: usize, s0: usize, steps: usize) -> (Weights<'_>, usize) {
        match &self.values {
            Values::F32(data) => {
                let ld = self.n.next_multiple_of(COLS);
                (Weights::F32(&data[s0 * ld + p * COLS..][..(steps - 1) * ld + COLS]), ld)
            }
            Values::Bf16(data) => (Weights::Bf16(&data[(p * self.steps + s0) * COLS..][..steps * COLS]), COLS),
        }
    }

    /// `w`, `(k, n)` row-major, rounded to bf16 (to nearest, ties to even) in pair panels.
    pub fn bf16(w: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(w.len(), k * n, "matrix size differs");
        let (panels, steps) = (n.div_ceil(COLS), k.div_ceil(2));
        let bits = |v: f32| u32::from(bf16::from_f32(v).to_bits());
        let mut data = vec![0u32; panels * steps * COLS];
        for (p, panel) in data.chunks_exact_mut(steps * COLS).enumerate() {
            let (c0, width) = (p * COLS, COLS.min(n - p * COLS));
            for (i, row) in panel.chunks_exact_mut(COLS).enumerate() {
                for (c, pair) in row[..width].iter_mut().enumerate() {
                    let low = bits(w[2 * i * n + c0 + c]);
                    let high = if 2 * i + 1 < k { bits(w[(2 * i + 1) * n + c0 + c]) } else { 0 };
                    *pair = low | (high << 16);
                }
            }
        }
        Self { values: Values::Bf16(data), k, n, steps }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        match &self.values {
            Values::F32(v) => v.len() * 4,
            Values::Bf16(v) => v.len() * 4,
        }
    }
}

/// A slice of a panel.
pub(super) enum Weights<'a> {
    F32(&'a [f32]),
    Bf16(&'a [u32]),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_weights_take_half_the_bytes() {
        let (f32, bf16) =
            (Panels::f32(&vec![1.0; 384 * 1536], 384, 1536), Panels::bf16(&vec![1.0; 384 * 1536], 384, 1536));
        assert_eq!((f32.bytes(), bf16.bytes()), (384 * 1536 * 4, 384 * 1536 * 2));
    }
}
