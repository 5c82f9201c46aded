//! The linear layers' matrix multiply, `out += x · W`, over one copy of the weights laid out for
//! streaming: `W` `(k, n)` cut into panels of 64 columns, in f32, f16, bf16 or int8. A register
//! tile of rows x 64 columns runs along `k` through one panel; few rows (one sentence) spread the
//! panels over the threads, many rows spread row chunks.
//!
//! f32 products use fused multiply-adds (AVX-512, AVX2 or plain code), on f32 weights or on f16
//! ones (half the bytes) expanded exactly as they load. bf16 weights take half the bytes too;
//! the activations are rounded to bf16 at the multiply's input and AVX-512 BF16's `vdpbf16ps`
//! multiplies pairs along `k` into f32 (twice the f32 FMA's work per instruction), or plain
//! code does the same arithmetic. In bf16 `k` is rounded up to even and rows `2i` and
//! `2i + 1` are interleaved column by column, the pairs `vdpbf16ps` takes. int8 products
//! (W8A8, `int8.rs`) round the activations to bytes as they go in and sum byte products exactly
//! in `i32`, four rows of `k` at a time.
//!
//! The parts: the weights' layout (`panels.rs`), the cut of a product into tasks across the
//! threads (`schedule.rs`), one task's walk over its panels and the kernel each tile runs
//! (`tiles.rs`), the tile kernels, in plain Rust (`portable.rs`) and in x86 intrinsics
//! (`x86.rs`), and the int8 products' rounding and kernels (`int8.rs`). This file is the product itself: the choice between `gemm` and the tiles, the
//! activations prepared for the tiles, and the tasks spread over the pool.

mod int8;
mod panels;
mod portable;
mod schedule;
mod tiles;
#[cfg(target_arch = "x86_64")]
mod x86;

use half::bf16;
use rayon::prelude::*;

use self::int8::quantize_row;
pub use self::panels::Panels;
use self::panels::Values;
pub use self::schedule::{CHUNK_TILES, row_chunks};
use self::schedule::{STREAM_CHUNK_TILES, Split};
use self::tiles::{Input, panels_strided};
#[cfg(target_arch = "x86_64")]
use self::x86::convert_avx512_bf16;
use super::gemm::{View, matmul_strided};
use super::isa::{Isa, Level};
use super::kernels::{Activation, activate};

/// Columns of a panel: four 512-bit registers of 16 f32 lanes.
const COLS: usize = 64;
/// Rows of a register tile: 6 x 4 accumulators, 4 weight registers and a broadcast.
pub const ROWS: usize = 6;
/// Beyond this many rows, f32 products on AVX-512 go through `gemm`.
const GEMM_ROWS: usize = 32;
/// Steps of a panel every tile takes in turn: 64 steps of 64 f32, bf16 pairs or int8 groups
/// (16 KiB).
const K_BLOCK: usize = 64;

/// `out += x · w` for `x` `(m, k)` and `out` `(m, n)`, both f32, dense row-major, then the
/// activation `then` on the result, each block by the task that computed it while it is in that
/// core's cache. Spread over the current rayon pool when `threads > 1`.
///
/// # Panics
/// When the buffer sizes do not match `w`'s shape.
pub fn accumulate(isa: Isa, out: &mut [f32], x: &[f32], w: &Panels, threads: usize, then: Option<Activation>) {
    let finish = |values: &mut [f32]| {
        if let Some(act) = then {
            activate(isa, values, act);
        }
    };
    let (k, n) = (w.k, w.n);
    let m = x.len() / k.max(1);
    assert!(x.len() == m * k && out.len() == m * n, "matrix sizes differ");
    if m == 0 {
        return;
    }
    if let (Values::F32Rows(values), Level::Avx512, true) = (&w.values, isa.level(), m > GEMM_ROWS) {
        // Many rows in f32 on AVX-512: `gemm`'s tuned kernels, on the same row-major weights.
        let weights = View { data: values, rows: k, cols: n, row_stride: n.next_multiple_of(COLS), col_stride: 1 };
        matmul_strided(out, n, View::rows(x, m, k), weights, 1.0, true, threads);
        if threads > 1 {
            out.par_chunks_mut(CHUNK_TILES * ROWS * n).for_each(finish);
        } else {
            finish(out);
        }
        return;
    }
    // The activations as the tiles read them: rows padded to whole tiles (zeros; in int8 bytes of
    // scale zero; the kernels never multiply them); in bf16, rounded to pairs.
    let rows = m.next_multiple_of(ROWS);
    let input = match &w.values {
        Values::F32Rows(_) | Values::F32(_) | Values::F16(_) => {
            let mut padded = Vec::with_capacity(rows * k);
            padded.extend_from_slice(x);
            padded.resize(rows * k, 0.0);
            Input::F32(padded)
        }
        Values::Bf16(_) => {
            let mut pairs = vec![0u32; rows * w.steps];
            let convert = |(row, dst): (&[f32], &mut [u32])| to_bf16_pairs(isa, row, dst);
            if threads > 1 && m >= CHUNK_TILES * ROWS {
                x.par_chunks_exact(k).zip(pairs.par_chunks_exact_mut(w.steps)).for_each(convert);
            } else {
                x.chunks_exact(k).zip(pairs.chunks_exact_mut(w.steps)).for_each(convert);
            }
            Input::Bf16(pairs)
        }
        Values::Int8(_) => {
            // With two-byte activations a row holds its first bytes, then its second ones.
            let (spans, width) = (w.steps.div_ceil(int8::SPAN), w.activation_groups());
            let (mut groups, mut scales) = (vec![0u32; rows * width], vec![0.0f32; rows * spans]);
            let quantize =
                |((row, dst), scales): ((&[f32], &mut [u32]), &mut [f32])| quantize_row(isa, row, dst, scales);
            if threads > 1 && m >= CHUNK_TILES * ROWS {
                let rows = x.par_chunks_exact(k).zip(groups.par_chunks_exact_mut(width));
                rows.zip(scales.par_chunks_exact_mut(spans)).for_each(quantize);
            } else {
                let rows = x.chunks_exact(k).zip(groups.chunks_exact_mut(width));
                rows.zip(scales.chunks_exact_mut(spans)).for_each(quantize);
            }
            Input::Int8 { groups, scales }
        }
    };
    let (panels, tiles) = (n.div_ceil(COLS), rows / ROWS);
    let most = if matches!(w.values, Values::F32(_) | Values::F16(_) | Values::Int8(_)) {
        STREAM_CHUNK_TILES
    } else {
        CHUNK_TILES
    };
    let split = Split::new(tiles, panels, threads, most);
    if split.groups == 1 {
        // Enough row chunks for every thread: each task owns whole rows of `out`.
        let chunk = |(c, out): (usize, &mut [f32])| {
            let first = c * split.chunk_tiles * ROWS;
            for p in 0..panels {
                panels_strided(isa, out, n, p * COLS, &input, first, w, p..p + 1);
            }
            finish(out);
        };
        let rows_per_chunk = split.chunk_tiles * ROWS * n;
        if threads > 1 {
            out.par_chunks_mut(rows_per_chunk).enumerate().for_each(chunk);
        } else {
            out.chunks_mut(rows_per_chunk).enumerate().for_each(chunk);
        }
        return;
    }
    // Few rows: each row chunk's panels split into runs too, each task writing its own block of
    // columns into a buffer. A run walks `k` once for all its panels, so the f32 weight rows it
    // reads are contiguous stretches rather than 64 columns a page apart.
    let tasks: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)> = (0..split.chunks)
        .flat_map(|c| {
            let rows = c * split.chunk_tiles * ROWS..((c + 1) * split.chunk_tiles * ROWS).min(m);
            (0..split.groups).map(move |g| (rows.clone(), g * panels / split.groups..(g + 1) * panels / split.groups))
        })
        .filter(|(rows, run)| !rows.is_empty() && !run.is_empty())
        .collect();
    let columns = |run: &std::ops::Range<usize>| (run.start * COLS, (run.end * COLS).min(n));
    let done: Vec<Vec<f32>> = tasks
        .par_iter()
        .map(|(rows, run)| {
            let (c0, c1) = columns(run);
            let width = c1 - c0;
            let mut block = vec![0.0f32; rows.len() * width];
            for (r, row) in rows.clone().zip(block.chunks_exact_mut(width)) {
                row.copy_from_slice(&out[r * n + c0..][..width]);
            }
            panels_strided(isa, &mut block, width, 0, &input, rows.start, w, run.clone());
            finish(&mut block);
            block
        })
        .collect();
    for ((rows, run), block) in tasks.iter().zip(&done) {
        let (c0, c1) = columns(run);
        let width = c1 - c0;
        for (r, row) in rows.clone().zip(block.chunks_exact(width)) {
            out[r * n + c0..][..width].copy_from_slice(row);
        }
    }
}

/// A row of f32 as bf16 pairs (to nearest, ties to even), the odd tail paired with zero: 32
/// values per instruction with AVX-512 BF16, one by one otherwise.
fn to_bf16_pairs(isa: Isa, row: &[f32], dst: &mut [u32]) {
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if isa.bf16() {
        done = row.len() / 32 * 32;
        // SAFETY: the CPU has AVX-512 BF16 (`Isa::detect`); `done` values of `row` are read and
        // `done / 2` of `dst` written, and `dst` holds `row.len().div_ceil(2)`.
        #[allow(unsafe_code)]
        unsafe {
            convert_avx512_bf16(&row[..done], &mut dst[..done / 2]);
        }
    }
    let bits = |v: f32| u32::from(bf16::from_f32(v).to_bits());
    for (pair, out) in row[done..].chunks(2).zip(dst[done / 2..].iter_mut()) {
        *out = bits(pair[0]) | (pair.get(1).map_or(0, |&v| bits(v)) << 16);
    }
}

#[cfg(test)]
mod tests;
