//! int8 products (W8A8): each activation row rounded to bytes, every 64 values (a span) with a
//! scale of their own (their largest magnitude over 127), multiplied by the int8 weights
//! (`Panels::int8`, a scale per column and span) four rows at a time into exact `i32` sums,
//! which each tile turns back to f32 with the span's row and column scales after each span.
//! The activations are stored 128 above their value, as unsigned bytes: AVX-512 VNNI's
//! `vpdpbusd` and AVX2's `vpmaddubsw` multiply unsigned bytes by signed ones, and 128 times the
//! weights' span sums takes the offset out again. `vpmaddubsw` adds two products in `i16`, so
//! for the AVX2 kernel the weights keep one bit fewer (within ±64: 2 · 255 · 64 fits), as ONNX
//! Runtime's `reduce_range`. The third kernel is plain Rust. All three compute the exact sums
//! of the bytes they are given.

use super::{COLS, ROWS};
use crate::packed::isa::{Isa, Level, for_each_level};

/// Steps (four-row groups) of `k` that share a scale: 64 values of an activation row or a weight
/// column, so one channel of outsized values coarsens only its own span of the row.
pub(super) const SPAN: usize = 16;

/// The largest weight byte (in magnitude) the AVX2 kernel takes: `vpmaddubsw` adds two products
/// of an unsigned byte and a signed one in `i16`, and 2 · 255 · 64 = 32640 still fits.
pub(super) const AVX2_LARGEST: u8 = 64;

/// The largest weight byte (in magnitude) for `isa`'s kernel: [`AVX2_LARGEST`] where the AVX2
/// kernel runs (so weights keep one bit fewer there, as ONNX Runtime's `reduce_range`), 127
/// with VNNI and in plain code.
pub(super) fn largest_weight(isa: Isa) -> u8 {
    if !isa.vnni() && isa.level() >= Level::Avx2 { AVX2_LARGEST } else { 127 }
}

for_each_level! {
/// `row` rounded to int8, each [`SPAN`] steps with its own scale (their largest magnitude over
/// 127, values to nearest, ties to even), as groups of four in `dst` (value `4i` in the lowest
/// byte of `dst[i]`, the tail the value zero), each byte stored plus 128 ([`pack`]), the
/// scales in `scales`. Where `dst` holds two groups per four values, the second half takes the
/// second bytes: what the first left, `value / scale - byte` within ±0.5, at 254 per unit, to
/// nearest (their scale is the first bytes' over 254). Each span is one pass of whole vectors
/// (the tail padded with zeros): lane-wise maxima, then bytes read from the values' bits.
pub(super) fn quantize_row(row: &[f32], dst: &mut [u32], scales: &mut [f32]) {
    let (high, low) = dst.split_at_mut(row.len().div_ceil(4));
    let two_bytes = !low.is_empty();
    for (span, (values, scale)) in row.chunks(SPAN_VALUES).zip(scales.iter_mut()).enumerate() {
        let mut padded = [0.0f32; SPAN_VALUES];
        padded[..values.len()].copy_from_slice(values);
        let largest = largest_magnitude(&padded);
        *scale = largest / 127.0;
        let inverse = if largest > 0.0 { 127.0 / largest } else { 0.0 };
        let first: [f32; SPAN_VALUES] = std::array::from_fn(|j| (padded[j] * inverse).round_ties_even());
        let used = span * SPAN..span * SPAN + values.len().div_ceil(4);
        pack(&first, &mut high[used.clone()]);
        if two_bytes {
            let rest_inverse = if *scale > 0.0 { 1.0 / *scale } else { 0.0 };
            let rest: [f32; SPAN_VALUES] = std::array::from_fn(|j| (padded[j] * rest_inverse - first[j]) * 254.0);
            pack(&rest, &mut low[used]);
        }
    }
}
}

/// Values of an activation row that share a scale.
const SPAN_VALUES: usize = 4 * SPAN;

/// The largest magnitude in `values`: 16 lanes side by side (a loop the compiler vectorizes,
/// where one running maximum would be a chain of scalar steps), then across the lanes.
#[inline(always)]
fn largest_magnitude(values: &[f32; SPAN_VALUES]) -> f32 {
    let mut lanes = [0.0f32; 16];
    for chunk in values.chunks_exact(16) {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane = lane.max(v.abs());
        }
    }
    lanes.into_iter().fold(0.0, f32::max)
}

/// `values` clamped to ±127 (NaN to -127) and rounded to nearest (ties to even) as signed
/// bytes stored 128 above their value, in groups of four, as the activations are stored:
/// `vpdpbusd` and `vpmaddubsw` multiply unsigned bytes by signed ones, and the weights' span
/// sums take the 128 out again. Adding 1.5 · 2^23 leaves the rounded whole number in an f32's
/// lowest mantissa bits, so each byte is read from the bits, in vector instructions, with no
/// conversion to an integer.
#[inline(always)]
// `max` then `min` rather than `clamp`: `clamp` passes NaN through, whose bits would make a
// meaningless byte.
#[allow(clippy::manual_clamp)]
fn pack(values: &[f32; SPAN_VALUES], dst: &mut [u32]) {
    const WHOLE: f32 = 12_582_912.0;
    let bytes: [u8; SPAN_VALUES] =
        std::array::from_fn(|j| ((values[j].max(-127.0).min(127.0) + WHOLE).to_bits() as u8) ^ 0x80);
    for (d, four) in dst.iter_mut().zip(bytes.chunks_exact(4)) {
        *d = u32::from_le_bytes([four[0], four[1], four[2], four[3]]);
    }
}

for_each_level! {
/// A tile in plain Rust: `tile[r][c] += x_scales[r] · w_scales[c] · Σ x[r][s] · panel[s][c]`,
/// the sum over bytes exact in `i32`.
#[allow(clippy::too_many_arguments)]
pub(super) fn tile_int8_portable(tile: &mut [f32; ROWS * COLS], rows: usize, x: &[u32], stride: usize, panel: &[u32], steps: usize, x_scales: &[f32], w_scales: &[f32]) {
    let activations = |group: u32| group.to_le_bytes().map(|b| i32::from(b) - 128);
    let weights = |group: u32| group.to_le_bytes().map(|b| i32::from(b as i8));
    let mut sums = [0i32; ROWS * COLS];
    for (s, step) in panel.chunks_exact(COLS).take(steps).enumerate() {
        for (r, row) in sums.chunks_exact_mut(COLS).take(rows).enumerate() {
            let xs = activations(x[r * stride + s]);
            for (sum, &w) in row.iter_mut().zip(step) {
                let ws = weights(w);
                *sum += xs[0] * ws[0] + xs[1] * ws[1] + xs[2] * ws[2] + xs[3] * ws[3];
            }
        }
    }
    for (r, (out, row)) in tile.chunks_exact_mut(COLS).zip(sums.chunks_exact(COLS)).take(rows).enumerate() {
        for ((o, &sum), &w_scale) in out.iter_mut().zip(row).zip(w_scales) {
            *o += x_scales[r] * w_scale * sum as f32;
        }
    }
}
}

/// Steps (four-row groups, 256 bytes of a panel each) ahead of the current one that the int8
/// tile kernels prefetch: 8 KiB, as the bf16 kernel.
#[cfg(target_arch = "x86_64")]
const PREFETCH: usize = 32;

/// `R` x 64 (`R <= ROWS`) in int8 with AVX-512 VNNI: up to 24 `i32` accumulators; per step four
/// weight loads, `R` broadcasts and `4R` `vpdpbusd` (64 byte products each).
///
/// # Safety
/// The CPU must have AVX-512 F, BW and VNNI; `x` holds ROWS rows of `steps` groups `stride`
/// apart, `panel` `steps * 64` groups, `x_scales` ROWS values and `w_scales` and `sums` 64.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code, clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(super) unsafe fn tile_int8_vnni<const R: usize>(
    tile: &mut [f32; ROWS * COLS],
    x: &[u32],
    stride: usize,
    panel: &[u32],
    steps: usize,
    x_scales: &[f32],
    w_scales: &[f32],
    sums: &[i32],
) {
    use std::arch::x86_64::{
        __m512i, _MM_HINT_T0, _mm_prefetch, _mm512_cvtepi32_ps, _mm512_dpbusd_epi32, _mm512_fmadd_ps, _mm512_loadu_ps,
        _mm512_loadu_si512, _mm512_mul_ps, _mm512_set1_epi32, _mm512_set1_ps, _mm512_setzero_si512, _mm512_slli_epi32,
        _mm512_storeu_ps, _mm512_sub_epi32,
    };
    const V: usize = COLS / 16;
    let (tile_ptr, w_ptr, x_ptr) = (tile.as_mut_ptr(), panel.as_ptr(), x.as_ptr());
    // SAFETY (whole body): offsets stay within the sizes the caller guarantees; prefetches are
    // hints and may point past the panel.
    unsafe {
        let mut c: [[__m512i; V]; R] = [[_mm512_setzero_si512(); V]; R];
        for s in 0..steps {
            let ws_ptr = w_ptr.add(s * COLS);
            let ahead = w_ptr.wrapping_add((s + PREFETCH) * COLS);
            for line in 0..4 {
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line * 16).cast());
            }
            let ws: [__m512i; V] = std::array::from_fn(|j| _mm512_loadu_si512(ws_ptr.add(j * 16).cast()));
            for (r, row) in c.iter_mut().enumerate() {
                let xv = _mm512_set1_epi32(*x_ptr.add(r * stride + s) as i32);
                for (v, wv) in row.iter_mut().zip(ws) {
                    *v = _mm512_dpbusd_epi32(*v, xv, wv);
                }
            }
        }
        let excess: [__m512i; V] =
            std::array::from_fn(|j| _mm512_slli_epi32::<7>(_mm512_loadu_si512(sums.as_ptr().add(j * 16).cast())));
        for (r, row) in c.iter().enumerate() {
            let x_scale = _mm512_set1_ps(x_scales[r]);
            for (j, v) in row.iter().enumerate() {
                let out = tile_ptr.add(r * COLS + j * 16);
                let scale = _mm512_mul_ps(x_scale, _mm512_loadu_ps(w_scales.as_ptr().add(j * 16)));
                let sum = _mm512_cvtepi32_ps(_mm512_sub_epi32(*v, excess[j]));
                _mm512_storeu_ps(out, _mm512_fmadd_ps(sum, scale, _mm512_loadu_ps(out)));
            }
        }
    }
}

/// `R` x 64 in int8 with AVX2, 16 columns at a time: up to 12 `i32` accumulators; per step two
/// weight loads, `R` broadcasts, and per row and load a `vpmaddubsw`, a `vpmaddwd` and an add
/// (32 byte products). `vpmaddubsw` adds pairs of products in `i16` with saturation: unsigned
/// bytes up to 255 times weights within ±[`AVX2_LARGEST`] stay below 32767, so the sums are
/// exact.
///
/// # Safety
/// The CPU must have AVX2 and FMA; sizes as for [`tile_int8_vnni`]; no weight's magnitude
/// above [`AVX2_LARGEST`].
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code, clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn tile_int8_avx2<const R: usize>(
    tile: &mut [f32; ROWS * COLS],
    x: &[u32],
    stride: usize,
    panel: &[u32],
    steps: usize,
    x_scales: &[f32],
    w_scales: &[f32],
    sums: &[i32],
) {
    use std::arch::x86_64::{
        __m256i, _MM_HINT_T0, _mm_prefetch, _mm256_add_epi32, _mm256_cvtepi32_ps, _mm256_fmadd_ps, _mm256_loadu_ps,
        _mm256_loadu_si256, _mm256_madd_epi16, _mm256_maddubs_epi16, _mm256_mul_ps, _mm256_set1_epi16,
        _mm256_set1_epi32, _mm256_set1_ps, _mm256_setzero_si256, _mm256_slli_epi32, _mm256_storeu_ps, _mm256_sub_epi32,
    };
    let (tile_ptr, w_ptr, x_ptr) = (tile.as_mut_ptr(), panel.as_ptr(), x.as_ptr());
    // SAFETY (whole body): offsets stay within the sizes the caller guarantees; prefetches are
    // hints and may point past the panel.
    unsafe {
        let ones = _mm256_set1_epi16(1);
        for c0 in (0..COLS).step_by(16) {
            let mut c: [[__m256i; 2]; R] = [[_mm256_setzero_si256(); 2]; R];
            for s in 0..steps {
                let ws_ptr = w_ptr.add(s * COLS + c0);
                _mm_prefetch::<_MM_HINT_T0>(w_ptr.wrapping_add((s + PREFETCH) * COLS + c0).cast());
                let ws = [_mm256_loadu_si256(ws_ptr.cast()), _mm256_loadu_si256(ws_ptr.add(8).cast())];
                for (r, row) in c.iter_mut().enumerate() {
                    let xv = _mm256_set1_epi32(*x_ptr.add(r * stride + s) as i32);
                    for (v, wv) in row.iter_mut().zip(ws) {
                        // Pairs of byte products, then pairs of pairs.
                        *v = _mm256_add_epi32(*v, _mm256_madd_epi16(_mm256_maddubs_epi16(xv, wv), ones));
                    }
                }
            }
            let excess: [__m256i; 2] = std::array::from_fn(|j| {
                _mm256_slli_epi32::<7>(_mm256_loadu_si256(sums.as_ptr().add(c0 + j * 8).cast()))
            });
            for (r, row) in c.iter().enumerate() {
                let x_scale = _mm256_set1_ps(x_scales[r]);
                for (j, v) in row.iter().enumerate() {
                    let out = tile_ptr.add(r * COLS + c0 + j * 8);
                    let scale = _mm256_mul_ps(x_scale, _mm256_loadu_ps(w_scales.as_ptr().add(c0 + j * 8)));
                    let sum = _mm256_cvtepi32_ps(_mm256_sub_epi32(*v, excess[j]));
                    _mm256_storeu_ps(out, _mm256_fmadd_ps(sum, scale, _mm256_loadu_ps(out)));
                }
            }
        }
    }
}
