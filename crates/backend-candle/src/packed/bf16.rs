//! bf16 weights and their matrix multiply: weights stored in bf16 (half the bytes of f32),
//! activations rounded to bf16 at the multiply's input, products accumulated in f32 with
//! AVX-512 BF16's `vdpbf16ps`, which multiplies pairs along `k` (twice the f32 FMA's work per
//! instruction). CPUs without it (or an ISA cap) run the same arithmetic in plain Rust.
//!
//! Layout: `k` rounded up to even and `n` to a multiple of 64, zeros in the padding; the weights
//! of rows `2p` and `2p + 1` interleaved column by column into "pair rows" of `2n` values, so one
//! 512-bit load holds 16 columns times 2 rows, the shape `vdpbf16ps` takes.

use half::bf16;
use rayon::prelude::*;

use super::isa::{Isa, for_each_level};

/// Columns of a panel: four 512-bit registers of 16 f32 lanes.
const COLS: usize = 64;
/// Rows of one register tile: 6 x 4 accumulators, 4 weight registers and a broadcast.
const ROWS: usize = 6;
/// Rows of activations one task takes when rows, not panels, are split across threads.
const CHUNK_ROWS: usize = 8 * ROWS;

/// A `(k, n)` weight matrix in bf16, pair-interleaved.
pub struct Bf16Weights {
    data: Vec<u16>,
    k: usize,
    n: usize,
    /// `k` rounded up to even: pairs are `kp / 2`.
    kp: usize,
    /// `n` rounded up to a multiple of [`COLS`].
    np: usize,
}

impl Bf16Weights {
    /// Rounds `w`, `(k, n)` row-major f32, to bf16 (to nearest, ties to even) and lays it out.
    pub fn new(w: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(w.len(), k * n, "matrix size differs");
        let (kp, np) = (k.next_multiple_of(2), n.next_multiple_of(COLS));
        let mut data = vec![0u16; kp * np];
        for r in 0..k {
            let (pair, half) = (r / 2, r % 2);
            for (c, &value) in w[r * n..(r + 1) * n].iter().enumerate() {
                data[pair * 2 * np + 2 * c + half] = bf16::from_f32(value).to_bits();
            }
        }
        Self { data, k, n, kp, np }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.data.len() * 2
    }
}

/// `out += bf16(x) · w` for `x` `(m, k)` f32 and `out` `(m, n)` f32, both dense row-major.
/// Spread over the current rayon pool when `threads > 1`: by column panels for few rows (one
/// sentence), by row chunks for many.
///
/// # Panics
/// When the buffer sizes do not match `w`'s shape.
pub fn matmul_bf16(isa: Isa, out: &mut [f32], x: &[f32], w: &Bf16Weights, threads: usize) {
    let (k, n) = (w.k, w.n);
    let m = x.len() / k.max(1);
    assert!(x.len() == m * k && out.len() == m * n, "matrix sizes differ");
    if m == 0 {
        return;
    }
    let pairs = w.kp / 2;
    let rows = m.next_multiple_of(ROWS);
    // Activations as bf16 pairs, one u32 per pair, rows padded with zeros.
    let mut xb = vec![0u32; rows * pairs];
    for (row, dst) in x.chunks_exact(k).zip(xb.chunks_exact_mut(pairs)) {
        to_bf16_pairs(row, dst);
    }
    let panels = w.np / COLS;
    if threads > 1 && rows / ROWS < 2 * threads {
        // Few rows: one task per panel, each writing its own columns into a buffer.
        let done: Vec<Vec<f32>> = (0..panels)
            .into_par_iter()
            .map(|p| {
                let width = COLS.min(n - p * COLS);
                let mut block = vec![0.0f32; m * width];
                for (r, row) in block.chunks_exact_mut(width).enumerate() {
                    row.copy_from_slice(&out[r * n + p * COLS..][..width]);
                }
                panel(isa, &mut block, width, &xb, 0, m, w, p);
                block
            })
            .collect();
        for (p, block) in done.iter().enumerate() {
            let width = COLS.min(n - p * COLS);
            for (r, row) in block.chunks_exact(width).enumerate() {
                out[r * n + p * COLS..][..width].copy_from_slice(row);
            }
        }
    } else {
        let chunk = |(c, out): (usize, &mut [f32])| {
            let (first, count) = (c * CHUNK_ROWS, out.len() / n);
            for p in 0..panels {
                panel_in_place(isa, out, n, &xb, first, count, w, p);
            }
        };
        if threads > 1 {
            out.par_chunks_mut(CHUNK_ROWS * n).enumerate().for_each(chunk);
        } else {
            out.chunks_mut(CHUNK_ROWS * n).enumerate().for_each(chunk);
        }
    }
}

/// Panel `p` for `count` rows starting at activation row `first`, into `block` (`count` rows of
/// `width`, the panel's own columns).
#[allow(clippy::too_many_arguments)]
fn panel(isa: Isa, block: &mut [f32], width: usize, xb: &[u32], first: usize, count: usize, w: &Bf16Weights, p: usize) {
    for r0 in (0..count).step_by(ROWS) {
        let take = ROWS.min(count - r0);
        let mut tile = [0.0f32; ROWS * COLS];
        for r in 0..take {
            tile[r * COLS..][..width].copy_from_slice(&block[(r0 + r) * width..][..width]);
        }
        run_tile(isa, &mut tile, xb, first + r0, w, p);
        for r in 0..take {
            block[(r0 + r) * width..][..width].copy_from_slice(&tile[r * COLS..][..width]);
        }
    }
}

/// [`panel`] writing straight into `out` (`count` rows of `n` columns).
#[allow(clippy::too_many_arguments)]
fn panel_in_place(
    isa: Isa,
    out: &mut [f32],
    n: usize,
    xb: &[u32],
    first: usize,
    count: usize,
    w: &Bf16Weights,
    p: usize,
) {
    let (c0, width) = (p * COLS, COLS.min(n - p * COLS));
    for r0 in (0..count).step_by(ROWS) {
        let take = ROWS.min(count - r0);
        let mut tile = [0.0f32; ROWS * COLS];
        for r in 0..take {
            tile[r * COLS..][..width].copy_from_slice(&out[(r0 + r) * n + c0..][..width]);
        }
        run_tile(isa, &mut tile, xb, first + r0, w, p);
        for r in 0..take {
            out[(r0 + r) * n + c0..][..width].copy_from_slice(&tile[r * COLS..][..width]);
        }
    }
}

/// One register tile: rows `r0..r0 + ROWS` of the activations times panel `p`, added to `tile`.
fn run_tile(isa: Isa, tile: &mut [f32; ROWS * COLS], xb: &[u32], r0: usize, w: &Bf16Weights, p: usize) {
    let pairs = w.kp / 2;
    let x = &xb[r0 * pairs..(r0 + ROWS) * pairs];
    let ldw = 2 * w.np;
    // The panel's first pair row starts at its first column; each pair row is `ldw` long.
    let weights = &w.data[2 * p * COLS..];
    assert!(weights.len() >= (pairs - 1) * ldw + 2 * COLS, "panel reaches past the weights");
    #[cfg(target_arch = "x86_64")]
    if isa.bf16() {
        // SAFETY: `isa.bf16()` holds only when the CPU has AVX-512 BF16 (`Isa::detect`); the
        // asserts above keep every load inside `x` and `weights`, and `tile` is ROWS x COLS.
        #[allow(unsafe_code)]
        unsafe {
            tile_avx512_bf16(tile, x, pairs, weights, ldw);
        }
        return;
    }
    tile_portable(isa, tile, x, pairs, weights, ldw);
}

for_each_level! {
/// [`tile_avx512_bf16`]'s arithmetic in plain Rust: the same bf16 inputs, products summed in f32.
fn tile_portable(tile: &mut [f32; ROWS * COLS], x: &[u32], pairs: usize, weights: &[u16], ldw: usize) {
    let wide = |bits: u16| f32::from_bits(u32::from(bits) << 16);
    for p in 0..pairs {
        let row = &weights[p * ldw..][..2 * COLS];
        for r in 0..ROWS {
            let pair = x[r * pairs + p];
            let (x0, x1) = (wide(pair as u16), wide((pair >> 16) as u16));
            for (c, acc) in tile[r * COLS..][..COLS].iter_mut().enumerate() {
                *acc += x0 * wide(row[2 * c]) + x1 * wide(row[2 * c + 1]);
            }
        }
    }
}
}

/// ROWS x 64 with AVX-512 BF16: 24 accumulators, per pair four weight loads, six broadcasts and
/// 24 `vdpbf16ps`.
///
/// # Safety
/// The CPU must have AVX-512 F, BW and BF16; `x` holds `ROWS * pairs` values and `weights` at
/// least `(pairs - 1) * ldw + 128`.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn tile_avx512_bf16(tile: &mut [f32; ROWS * COLS], x: &[u32], pairs: usize, weights: &[u16], ldw: usize) {
    use std::arch::x86_64::{
        __m512, __m512bh, __m512i, _mm512_castsi512_ps, _mm512_dpbf16_ps, _mm512_loadu_ps, _mm512_loadu_si512,
        _mm512_set1_epi32, _mm512_storeu_ps,
    };
    const V: usize = COLS / 16;
    let bh = |v: __m512i| -> __m512bh {
        // SAFETY: both are 512 bits of plain data.
        unsafe { std::mem::transmute::<__m512i, __m512bh>(v) }
    };
    let (tile_ptr, w_ptr, x_ptr) = (tile.as_mut_ptr(), weights.as_ptr(), x.as_ptr());
    // SAFETY (whole body): offsets stay within the sizes the caller guarantees.
    unsafe {
        let mut c: [[__m512; V]; ROWS] = [[_mm512_castsi512_ps(_mm512_set1_epi32(0)); V]; ROWS];
        for (r, row) in c.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(tile_ptr.add(r * COLS + j * 16));
            }
        }
        for p in 0..pairs {
            let wp = w_ptr.add(p * ldw);
            let ws: [__m512bh; V] = std::array::from_fn(|j| bh(_mm512_loadu_si512(wp.add(j * 32).cast())));
            for (r, row) in c.iter_mut().enumerate() {
                let xv = bh(_mm512_set1_epi32(*x_ptr.add(r * pairs + p) as i32));
                for (v, wv) in row.iter_mut().zip(ws) {
                    *v = _mm512_dpbf16_ps(*v, xv, wv);
                }
            }
        }
        for (r, row) in c.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                _mm512_storeu_ps(tile_ptr.add(r * COLS + j * 16), *v);
            }
        }
    }
}

/// A row of f32 as bf16 pairs (to nearest, ties to even), the odd tail paired with zero.
fn to_bf16_pairs(row: &[f32], dst: &mut [u32]) {
    let bits = |v: f32| u32::from(bf16::from_f32(v).to_bits());
    for (pair, out) in row.chunks(2).zip(dst.iter_mut()) {
        *out = bits(pair[0]) | (pair.get(1).map_or(0, |&v| bits(v)) << 16);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `out + bf16(x) · bf16(w)` in f64, the reference the kernels must match.
    fn reference(out: &[f32], x: &[f32], w: &[f32], m: usize, k: usize, n: usize) -> Vec<f64> {
        let round = |v: f32| f64::from(bf16::from_f32(v).to_f32());
        (0..m * n)
            .map(|i| {
                let (r, c) = (i / n, i % n);
                f64::from(out[i]) + (0..k).map(|j| round(x[r * k + j]) * round(w[j * n + c])).sum::<f64>()
            })
            .collect()
    }

    #[test]
    fn every_level_matches_the_rounded_product_on_every_edge() {
        let levels: Vec<Isa> = ["auto", "avx2", "scalar"].iter().map(|c| Isa::detect(c).expect("cap")).collect();
        // Odd k, n off the panel width, rows off the tile height; few rows and many.
        for (m, k, n) in [(1, 3, 5), (5, 7, 64), (7, 9, 130), (13, 384, 192), (100, 33, 70), (4, 2, 64)] {
            let x: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let w: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
            let start: Vec<f32> = (0..m * n).map(|i| i as f32 * 0.01).collect();
            let want = reference(&start, &x, &w, m, k, n);
            let packed = Bf16Weights::new(&w, k, n);
            for &isa in &levels {
                for threads in [1, 2] {
                    let mut got = start.clone();
                    matmul_bf16(isa, &mut got, &x, &packed, threads);
                    for (g, w) in got.iter().zip(&want) {
                        let tolerance = 1e-4 * (1.0 + w.abs()) * (k as f64).sqrt();
                        assert!((f64::from(*g) - w).abs() < tolerance, "{isa:?} ({m}, {k}, {n}): {g} vs {w}");
                    }
                }
            }
        }
    }

    #[test]
    fn weights_take_half_the_bytes() {
        let w = Bf16Weights::new(&vec![1.0; 384 * 1536], 384, 1536);
        assert_eq!(w.bytes(), 384 * 1536 * 2);
    }
}
