//! The linear layers' weights as the tiles stream them: `W` `(k, n)` in panels of 64 columns,
//! in f32 (row-major, rows padded with zeros to whole panels, where AVX-512 hands many rows to
//! `gemm`; contiguous panels elsewhere), in f16 (contiguous panels, expanded to f32 as the
//! tiles load them) or in bf16 (contiguous pair panels, rows `2i` and `2i + 1` interleaved
//! column by column).

use half::{bf16, f16};

use super::COLS;
use crate::packed::isa::{Isa, Level};

/// The values of the panels.
pub(super) enum Values {
    /// f32, row-major: a panel is 64 columns of the matrix, its steps a whole row apart.
    F32Rows(Vec<f32>),
    /// f32 panels back to back, each `k` steps of 64 values: a tile reads one stream.
    F32(Vec<f32>),
    /// f16 bits in panels back to back, laid out as [`Values::F32`].
    F16(Vec<u16>),
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
    /// `w`, `(k, n)` row-major, in f32 as `isa`'s kernels read it best: row-major on AVX-512,
    /// where `gemm` takes products of many rows on the matrix as it is ([`Panels::f32_rows`]);
    /// contiguous panels on the other levels, where the tiles take every product and a stream
    /// per panel is what the hardware prefetcher follows ([`Panels::f32_panels`]).
    pub fn f32(isa: Isa, w: &[f32], k: usize, n: usize) -> Self {
        if isa.level() == Level::Avx512 { Self::f32_rows(w, k, n) } else { Self::f32_panels(w, k, n) }
    }

    /// `w`, `(k, n)` row-major, in f32: kept row-major (rows padded with zeros to whole panels)
    /// so `gemm` reads it as it is, and a panel is 64 columns of it, rows a full row apart.
    pub fn f32_rows(w: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(w.len(), k * n, "matrix size differs");
        let ld = n.next_multiple_of(COLS);
        let mut data = vec![0.0f32; k * ld];
        for (row, values) in data.chunks_exact_mut(ld).zip(w.chunks_exact(n)) {
            row[..n].copy_from_slice(values);
        }
        Self { values: Values::F32Rows(data), k, n, steps: k }
    }

    /// `w`, `(k, n)` row-major, in f32 panels back to back: panel `p` is `k` steps of its 64
    /// columns (the last panel padded with zero columns).
    pub fn f32_panels(w: &[f32], k: usize, n: usize) -> Self {
        Self { values: Values::F32(contiguous(w, k, n, |v| v)), k, n, steps: k }
    }

    /// `w`, `(k, n)` row-major, rounded to f16 (to nearest, ties to even; beyond its range to
    /// infinity) in panels laid out as [`Panels::f32_panels`]: half the bytes, and the tiles
    /// multiply in f32 after expanding each weight exactly.
    pub fn f16(w: &[f32], k: usize, n: usize) -> Self {
        Self { values: Values::F16(contiguous(w, k, n, |v| f16::from_f32(v).to_bits())), k, n, steps: k }
    }

    /// Whether each panel is one stream (its steps `COLS` apart) rather than 64 columns of a
    /// row-major matrix.
    pub(super) fn streams(&self) -> bool {
        !matches!(self.values, Values::F32Rows(_))
    }

    /// Panel `p`'s steps `s0..s0 + steps` as the tiles read them, with the distance between
    /// steps: a slice of the row-major f32 matrix, or of a contiguous f32 or bf16 panel.
    pub(super) fn weights(&self, p: usize, s0: usize, steps: usize) -> (Weights<'_>, usize) {
        let panel = (p * self.steps + s0) * COLS..;
        match &self.values {
            Values::F32Rows(data) => {
                let ld = self.n.next_multiple_of(COLS);
                (Weights::F32(&data[s0 * ld + p * COLS..][..(steps - 1) * ld + COLS]), ld)
            }
            Values::F32(data) => (Weights::F32(&data[panel][..steps * COLS]), COLS),
            Values::F16(data) => (Weights::F16(&data[panel][..steps * COLS]), COLS),
            Values::Bf16(data) => (Weights::Bf16(&data[panel][..steps * COLS]), COLS),
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
            Values::F32Rows(v) | Values::F32(v) => v.len() * 4,
            Values::F16(v) => v.len() * 2,
            Values::Bf16(v) => v.len() * 4,
        }
    }
}

/// `w`, `(k, n)` row-major, as panels back to back (panel `p` is `k` steps of its 64 columns,
/// the last padded with zero columns), each value turned into `T` by `value`.
fn contiguous<T: Copy + Default>(w: &[f32], k: usize, n: usize, value: impl Fn(f32) -> T) -> Vec<T> {
    assert_eq!(w.len(), k * n, "matrix size differs");
    let mut data = vec![T::default(); n.div_ceil(COLS) * k * COLS];
    for (p, panel) in data.chunks_exact_mut(k * COLS).enumerate() {
        let (c0, width) = (p * COLS, COLS.min(n - p * COLS));
        for (step, values) in panel.chunks_exact_mut(COLS).zip(w.chunks_exact(n)) {
            for (out, &v) in step[..width].iter_mut().zip(&values[c0..][..width]) {
                *out = value(v);
            }
        }
    }
    data
}

/// A slice of a panel.
pub(super) enum Weights<'a> {
    F32(&'a [f32]),
    F16(&'a [u16]),
    Bf16(&'a [u32]),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_and_f16_weights_take_half_the_bytes() {
        let w = vec![1.0; 384 * 1536];
        let bytes = [Panels::f32_rows, Panels::f32_panels, Panels::f16, Panels::bf16].map(|p| p(&w, 384, 1536).bytes());
        assert_eq!(bytes, [384 * 1536 * 4, 384 * 1536 * 4, 384 * 1536 * 2, 384 * 1536 * 2]);
    }

    #[test]
    fn f32_panels_hold_the_columns_of_the_row_major_matrix() {
        let (k, n) = (3, 70);
        let w: Vec<f32> = (0..k * n).map(|i| i as f32).collect();
        let (rows, panels) = (Panels::f32_rows(&w, k, n), Panels::f32_panels(&w, k, n));
        for p in 0..2 {
            let (Weights::F32(a), ld) = rows.weights(p, 1, 2) else { unreachable!() };
            let (Weights::F32(b), 64) = panels.weights(p, 1, 2) else { unreachable!() };
            for (s, c) in (0..2).flat_map(|s| (0..64).map(move |c| (s, c))) {
                assert_eq!(a[s * ld + c], b[s * 64 + c], "panel {p} step {s} column {c}");
            }
        }
        assert_eq!(panels.weights(1, 0, 1).1, 64);
        assert!(panels.streams() && !rows.streams());
        let halved = Panels::f16(&w, k, n);
        let (Weights::F16(halves), 64) = halved.weights(1, 1, 2) else { unreachable!() };
        let (Weights::F32(b), 64) = panels.weights(1, 1, 2) else { unreachable!() };
        assert!(halves.iter().zip(b).all(|(&h, &v)| f16::from_bits(h).to_f32() == v));
    }
}
