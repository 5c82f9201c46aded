//! The linear layers' weights as the tiles stream them: `W` `(k, n)` in panels of 64 columns,
//! in f32 (row-major, rows padded with zeros to whole panels, where AVX-512 hands many rows to
//! `gemm`; contiguous panels elsewhere), in f16 (contiguous panels, expanded to f32 as the
//! tiles load them), in bf16 (contiguous pair panels, rows `2i` and `2i + 1` interleaved
//! column by column) or in int8 (contiguous panels of groups of four rows, one byte each, with a
//! scale per column).

use half::{bf16, f16};

use super::int8::{SPAN, largest_weight};
use super::{COLS, K_BLOCK};
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
    /// int8 in groups of four rows (boxed: four fields).
    Int8(Box<Int8>),
}

/// int8 panels: rows `4i..4i + 4` of a column in one `u32`, row `4i` in the lowest byte;
/// `w[row][c]` is `byte` times the scale of `c` and the row's span.
pub(super) struct Int8 {
    groups: Vec<u32>,
    /// One per column (`n` rounded up to whole panels, zero in the padding) and [`SPAN`]
    /// steps, `[panel][span][64]`.
    scales: Vec<f32>,
    /// The bytes' sum of each column over each [`SPAN`] steps of its panel, `[panel][span][64]`:
    /// what a product that reads its activations offset by 128 (`vpdpbusd` multiplies
    /// unsigned bytes) takes away again.
    sums: Vec<i32>,
    /// Whether the activations go in as two bytes each (see [`Panels::with_two_byte_activations`]).
    two_bytes: bool,
    /// The largest magnitude a byte may take (`int8::largest_weight`).
    largest: u8,
}

/// A `(k, n)` weight matrix in panels of 64 columns (`n` padded with zero columns).
pub struct Panels {
    pub(super) values: Values,
    pub(super) k: usize,
    pub(super) n: usize,
    /// Steps along `k` of one panel: `k` in f32 and f16, `k / 2` rounded up in bf16, `k / 4` in
    /// int8.
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

    /// Steps of `k` every tile takes in turn: [`K_BLOCK`] (16 KiB of a panel in f32), or in
    /// int8 one [`SPAN`], the steps that share an activation scale.
    pub(super) fn block(&self) -> usize {
        if matches!(self.values, Values::Int8(_)) { SPAN } else { K_BLOCK }
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
            Values::Int8(int8) => {
                let Int8 { groups, scales, sums, largest, .. } = &**int8;
                let block = (p * self.steps.div_ceil(SPAN) + s0 / SPAN) * COLS;
                let weights = Weights::Int8 {
                    groups: &groups[panel][..steps * COLS],
                    scales: &scales[block..][..COLS],
                    sums: &sums[block..][..COLS],
                    largest: *largest,
                };
                (weights, COLS)
            }
        }
    }

    /// `w`, `(k, n)` row-major, in int8 for `isa`'s kernel with one scale per column and
    /// [`SPAN`] steps (the largest magnitude there over the largest byte the kernel takes, 127
    /// or 64, values to nearest), in contiguous panels of four-row groups: a quarter of the f32
    /// bytes, and the tiles multiply bytes by bytes into `i32`.
    pub fn int8(isa: Isa, w: &[f32], k: usize, n: usize) -> Self {
        let largest = largest_weight(isa);
        let limit = f32::from(largest);
        assert_eq!(w.len(), k * n, "matrix size differs");
        let (panels, steps) = (n.div_ceil(COLS), k.div_ceil(4));
        let blocks = steps.div_ceil(SPAN);
        let rows = |b: usize| 4 * SPAN * b..(4 * SPAN * (b + 1)).min(k);
        let mut scales = vec![0.0f32; panels * blocks * COLS];
        for (i, scale) in scales.iter_mut().enumerate() {
            let (p, b) = (i / (blocks * COLS), i / COLS % blocks);
            let c = p * COLS + i % COLS;
            if c < n {
                *scale = rows(b).map(|r| w[r * n + c].abs()).fold(0.0, f32::max) / limit;
            }
        }
        let byte = |r: usize, c: usize| -> i8 {
            let scale = scales[((c / COLS) * blocks + r / (4 * SPAN)) * COLS + c % COLS];
            if r >= k || scale == 0.0 { 0 } else { (w[r * n + c] / scale).round().clamp(-limit, limit) as i8 }
        };
        let mut groups = vec![0u32; panels * steps * COLS];
        let mut sums = vec![0i32; panels * blocks * COLS];
        for (p, panel) in groups.chunks_exact_mut(steps * COLS).enumerate() {
            let (c0, width) = (p * COLS, COLS.min(n - p * COLS));
            for (i, step) in panel.chunks_exact_mut(COLS).enumerate() {
                let block = &mut sums[(p * blocks + i / SPAN) * COLS..][..COLS];
                for (c, (group, sum)) in step[..width].iter_mut().zip(block).enumerate() {
                    let bytes: [i8; 4] = std::array::from_fn(|j| byte(4 * i + j, c0 + c));
                    *sum += bytes.iter().map(|&b| i32::from(b)).sum::<i32>();
                    *group = u32::from_le_bytes(bytes.map(|b| b as u8));
                }
            }
        }
        Self { values: Values::Int8(Box::new(Int8 { groups, scales, sums, two_bytes: false, largest })), k, n, steps }
    }

    /// int8 panels whose products take each activation as two bytes: the byte rounding gives
    /// and the byte of what it left (at 254 per unit of the first), so the activations carry
    /// about 16 bits and only the weights are rounded to 8, for twice the products. For the
    /// layers whose rounding costs most (the attention's projections, whose errors the softmax
    /// sharpens); other panels are unchanged.
    pub fn with_two_byte_activations(mut self) -> Self {
        if let Values::Int8(int8) = &mut self.values {
            int8.two_bytes = true;
        }
        self
    }

    /// Groups of four bytes one activation row takes in int8: a panel's steps, twice over
    /// with two-byte activations.
    pub(super) fn activation_groups(&self) -> usize {
        if matches!(&self.values, Values::Int8(int8) if int8.two_bytes) { 2 * self.steps } else { self.steps }
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
            Values::Int8(int8) => (int8.groups.len() + int8.scales.len() + int8.sums.len()) * 4,
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
    /// A panel's four-row groups, with its 64 columns' scales and, for the block the slice
    /// starts in, their sums, and the largest magnitude of a byte.
    Int8 {
        groups: &'a [u32],
        scales: &'a [f32],
        sums: &'a [i32],
        largest: u8,
    },
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
    fn int8_weights_take_a_quarter_of_the_bytes_and_hold_each_column_to_its_scales() {
        let (k, n) = (130, 70);
        let w: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.37).sin() * (1 + i % n) as f32).collect();
        let panels = Panels::int8(Isa::detect("scalar").expect("cap"), &w, k, n);
        // 33 four-row groups of 128 columns, and a scale and a sum per column for each of the
        // three spans.
        let spans = 33usize.div_ceil(SPAN);
        assert_eq!(panels.bytes(), 33 * 128 * 4 + 2 * spans * 128 * 4);
        for (p, span) in (0..2).flat_map(|p| (0..spans).map(move |b| (p, b))) {
            let s0 = span * SPAN;
            let steps = SPAN.min(33 - s0);
            let (Weights::Int8 { groups, scales, sums, largest: 127 }, 64) = panels.weights(p, s0, steps) else {
                unreachable!()
            };
            let rows = 4 * s0..(4 * (s0 + steps)).min(k);
            for c in 0..COLS.min(n - p * COLS) {
                let byte = |r: usize| (groups[(r / 4 - s0) * COLS + c] >> (8 * (r % 4))) as u8 as i8;
                let bytes: Vec<i8> = rows.clone().map(byte).collect();
                assert_eq!(bytes.iter().map(|&b| i32::from(b)).sum::<i32>(), sums[c], "span {span}");
                assert_eq!(bytes.iter().map(|b| b.unsigned_abs()).max(), Some(127), "column {c}: its largest is 127");
                for (r, &b) in rows.clone().zip(&bytes) {
                    let v = w[r * n + p * COLS + c];
                    assert!((f32::from(b) * scales[c] - v).abs() <= scales[c] / 2.0 * 1.0001, "({r}, {c})");
                }
            }
        }
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
