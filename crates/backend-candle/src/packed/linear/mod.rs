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
    // The activations as the tiles read them: rows padded with zeros to whole tiles; in bf16,
    // rounded to pairs.
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
mod tests {
    use super::*;

    fn levels() -> Vec<Isa> {
        ["auto", "avx2", "scalar"].iter().map(|c| Isa::detect(c).expect("cap")).collect()
    }

    /// How the product rounds its inputs: the activations and the weights.
    type Rounding = (fn(f32) -> f64, fn(f32) -> f64);

    /// `out + x · w` in f64, with the activations and the weights rounded first.
    fn reference(out: &[f32], x: &[f32], w: &[f32], (m, k, n): (usize, usize, usize), round: Rounding) -> Vec<f64> {
        (0..m * n)
            .map(|i| {
                let (r, c) = (i / n, i % n);
                f64::from(out[i]) + (0..k).map(|j| round.0(x[r * k + j]) * round.1(w[j * n + c])).sum::<f64>()
            })
            .collect()
    }

    /// Odd `k`, `n` off the panel width, rows off the tile height; few rows and many (panels
    /// split, rows split, both).
    const SHAPES: [(usize, usize, usize); 9] = [
        (1, 3, 5),
        (5, 7, 64),
        (7, 9, 130),
        (13, 384, 192),
        (100, 33, 70),
        (4, 2, 64),
        (61, 40, 200),
        (24, 50, 384),
        (300, 20, 70),
    ];

    /// Panels of `w` `(k, n)` built for a level.
    type Build = dyn Fn(Isa, &[f32], usize, usize) -> Panels;

    /// The product each kind of panels computes: `out + x · w` of `x` `(m, k)` and `w` `(k, n)`.
    type Reference = dyn Fn(&[f32], &[f32], &[f32], (usize, usize, usize)) -> Vec<f64>;

    fn check(panels: fn(&[f32], usize, usize) -> Panels, round: Rounding, tolerance: f64) {
        let reference = move |out: &[f32], x: &[f32], w: &[f32], shape| reference(out, x, w, shape, round);
        check_against(&move |_, w, k, n| panels(w, k, n), &|_| Box::new(reference), tolerance);
    }

    /// Each level's product of `panels` (built for that level) against `reference` (for the
    /// level's largest weight byte, where that matters).
    fn check_against(
        panels: &Build,
        reference: &dyn Fn(Isa) -> Box<Reference>,
        tolerance: f64,
    ) {
        for (isa, (m, k, n)) in levels().into_iter().flat_map(|isa| SHAPES.map(|shape| (isa, shape))) {
            let x: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let w: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
            let start: Vec<f32> = (0..m * n).map(|i| i as f32 * 0.01).collect();
            let want = reference(isa)(&start, &x, &w, (m, k, n));
            let packed = panels(isa, &w, k, n);
            for (threads, then) in [(1, None), (2, None), (1, Some(Activation::Relu)), (2, Some(Activation::Relu))] {
                let mut got = start.clone();
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("pool")
                    .install(|| accumulate(isa, &mut got, &x, &packed, threads, then));
                for (g, w) in got.iter().zip(&want) {
                    let w = if then.is_some() { w.max(0.0) } else { *w };
                    let bound = tolerance * (1.0 + w.abs()) * (k as f64).sqrt();
                    assert!((f64::from(*g) - w).abs() < bound, "{isa:?} {then:?} ({m}, {k}, {n}): {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn f32_panels_match_the_product_at_every_level_and_edge() {
        check(Panels::f32_rows, (f64::from, f64::from), 1e-5);
        check(Panels::f32_panels, (f64::from, f64::from), 1e-5);
    }

    #[test]
    fn f16_panels_match_the_rounded_product_at_every_level_and_edge() {
        check(Panels::f16, (f64::from, |v| f64::from(half::f16::from_f32(v).to_f32())), 1e-5);
    }

    #[test]
    fn bf16_panels_match_the_rounded_product_at_every_level_and_edge() {
        let round = |v| f64::from(bf16::from_f32(v).to_f32());
        check(Panels::bf16, (round, round), 1e-4);
    }

    #[test]
    fn int8_panels_match_the_quantized_product_at_every_level_and_edge() {
        // Each span of an activation row and of a weight column rounded to int8 with its own
        // scale (the weights' largest byte the level's: 64 for the AVX2 kernel), as
        // `quantize_row` and `Panels::int8` do, then the exact sums of byte products.
        let span = 4 * int8::SPAN;
        let int8 = move |isa: Isa| -> Box<Reference> {
            let top_byte = f32::from(int8::largest_weight(isa));
            Box::new(move |out: &[f32], x: &[f32], w: &[f32], (m, k, n): (usize, usize, usize)| -> Vec<f64> {
                let largest = |v: &mut dyn Iterator<Item = f32>| v.fold(0.0f32, |a, b| a.max(b.abs()));
                // Per row, each value's scale and byte.
                let x_bytes: Vec<Vec<(f32, i64)>> = x
                    .chunks_exact(k)
                    .map(|row| {
                        row.chunks(span)
                            .flat_map(|values| {
                                let top = largest(&mut values.iter().copied());
                                let inverse = if top > 0.0 { 127.0 / top } else { 0.0 };
                                values.iter().map(move |v| (top / 127.0, (v * inverse).round() as i64))
                            })
                            .collect()
                    })
                    .collect();
                // Per span and column, the weights' scale.
                let w_scales: Vec<Vec<f32>> = (0..k)
                    .step_by(span)
                    .map(|j0| {
                        (0..n)
                            .map(|c| largest(&mut (j0..(j0 + span).min(k)).map(|r| w[r * n + c])) / top_byte)
                            .collect()
                    })
                    .collect();
                let w_byte = |r: usize, c: usize| (w[r * n + c] / w_scales[r / span][c]).round() as i64;
                (0..m * n)
                    .map(|i| {
                        let (row, c) = (&x_bytes[i / n], i % n);
                        let spans = (0..k).step_by(span).map(|j0| {
                            let sum: i64 = (j0..(j0 + span).min(k)).map(|j| row[j].1 * w_byte(j, c)).sum();
                            f64::from(row[j0].0) * f64::from(w_scales[j0 / span][c]) * sum as f64
                        });
                        f64::from(out[i]) + spans.sum::<f64>()
                    })
                    .collect()
            })
        };
        check_against(&Panels::int8, &int8, 1e-5);
    }

    #[test]
    fn int8_products_of_the_largest_bytes_do_not_saturate() {
        // Every byte at its largest and every product positive: AVX2's pairs of products
        // (2 · 255 · 64 = 32640 with the activations offset by 128) come closest to the `i16`
        // limit there.
        let (m, k, n) = (6, 256, 64);
        let sign = |j: usize| if j.is_multiple_of(3) { -1.0f32 } else { 1.0 };
        let x: Vec<f32> = (0..m * k).map(|i| sign(i % k)).collect();
        let w: Vec<f32> = (0..k * n).map(|i| sign(i / n)).collect();
        for isa in levels() {
            let mut got = vec![0.0; m * n];
            accumulate(isa, &mut got, &x, &Panels::int8(isa, &w, k, n), 1, None);
            assert!(got.iter().all(|&v| (v - k as f32).abs() < 1e-3), "{isa:?}: {:?}", &got[..4]);
        }
    }

    #[test]
    fn int8_products_stay_near_the_f32_ones() {
        // Uniform values from a linear congruential generator: sums that do not cancel.
        let (m, k, n) = (13, 384, 192);
        let mut state = 1u64;
        let mut uniform = || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        };
        let x: Vec<f32> = (0..m * k).map(|_| uniform()).collect();
        let w: Vec<f32> = (0..k * n).map(|_| uniform() * 0.05).collect();
        let want = reference(&vec![0.0; m * n], &x, &w, (m, k, n), (f64::from, f64::from));
        let norm = |v: &mut dyn Iterator<Item = f64>| v.map(|e| e * e).sum::<f64>().sqrt();
        let relative = |got: &[f32]| {
            norm(&mut got.iter().zip(&want).map(|(g, w)| f64::from(*g) - w)) / norm(&mut want.iter().copied())
        };
        let product = |x: &[f32], panels: &Panels, isa: Isa| {
            let mut got = vec![0.0; x.len() / k * n];
            accumulate(isa, &mut got, x, panels, 1, None);
            got
        };
        let identity: Vec<f32> = (0..k * k).map(|i| f32::from(u8::from(i / k == i % k))).collect();
        for isa in levels() {
            let (one, two) = (Panels::int8(isa, &w, k, n), Panels::int8(isa, &w, k, n).with_two_byte_activations());
            // The weights as rounded (one activation of 1 per row is exact in a byte), in f32
            // products: the error of the weights' rounding alone.
            let rounded = product(&identity, &one, isa);
            let weights_only = relative(
                &reference(&vec![0.0; m * n], &x, &rounded, (m, k, n), (f64::from, f64::from))
                    .iter()
                    .map(|&v| v as f32)
                    .collect::<Vec<_>>(),
            );
            let (one, two) = (relative(&product(&x, &one, isa)), relative(&product(&x, &two, isa)));
            // Two-byte activations leave about the weights' rounding alone.
            assert!(
                one < 0.01 && two < one && (two - weights_only).abs() < 0.1 * weights_only,
                "{isa:?}: relative errors {one}, {two}, of the weights alone {weights_only}"
            );
        }
    }

    #[test]
    fn activations_round_to_nearest_even_at_every_level() {
        let row: Vec<f32> = (0..70).map(|i| (i as f32 * 0.731).sin() * 1e3 + 1.0 / 3.0).collect();
        let mut want = vec![0u32; 35];
        to_bf16_pairs(Isa::detect("scalar").expect("cap"), &row, &mut want);
        let mut got = vec![0u32; 35];
        to_bf16_pairs(Isa::detect("auto").expect("cap"), &row, &mut got);
        assert_eq!(got, want);
        assert_eq!(f32::from_bits(want[0] << 16), bf16::from_f32(row[0]).to_f32());
    }
}
