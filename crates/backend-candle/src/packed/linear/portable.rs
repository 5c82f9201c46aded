//! The register-tile kernels in plain Rust, compiled once per level by `for_each_level!` so the
//! compiler vectorises them with that level's registers: f32 products on f32 or f16 weights at
//! the scalar level, bf16 products on CPUs without AVX-512 BF16 (the same arithmetic as
//! `vdpbf16ps`).

use super::{COLS, ROWS};
use crate::packed::isa::for_each_level;

for_each_level! {
/// A tile in plain Rust: `tile[r][c] += Σ x[r][s] · panel[s][c]`.
#[allow(clippy::too_many_arguments)]
pub(super) fn tile_f32_portable(tile: &mut [f32; ROWS * COLS], rows: usize, x: &[f32], stride: usize, panel: &[f32], ld: usize, steps: usize) {
    for s in 0..steps {
        let weights = &panel[s * ld..][..COLS];
        for (r, row) in tile.chunks_exact_mut(COLS).take(rows).enumerate() {
            let xv = x[r * stride + s];
            for (acc, w) in row.iter_mut().zip(weights) {
                *acc += xv * w;
            }
        }
    }
}
}

for_each_level! {
/// [`tile_f32_portable`] on f16 weights (their bits), each expanded exactly to f32.
#[allow(clippy::too_many_arguments)]
pub(super) fn tile_f16_portable(tile: &mut [f32; ROWS * COLS], rows: usize, x: &[f32], stride: usize, panel: &[u16], ld: usize, steps: usize) {
    for s in 0..steps {
        let weights: [f32; COLS] = std::array::from_fn(|c| half::f16::from_bits(panel[s * ld + c]).to_f32());
        for (r, row) in tile.chunks_exact_mut(COLS).take(rows).enumerate() {
            let xv = x[r * stride + s];
            for (acc, w) in row.iter_mut().zip(&weights) {
                *acc += xv * w;
            }
        }
    }
}
}

for_each_level! {
/// [`tile_bf16_avx512`](super::x86::tile_bf16_avx512)'s arithmetic in plain Rust: the same bf16
/// inputs, products summed in f32.
pub(super) fn tile_bf16_portable(tile: &mut [f32; ROWS * COLS], rows: usize, x: &[u32], stride: usize, panel: &[u32], steps: usize) {
    let (low, high) = (|bits: u32| f32::from_bits(bits << 16), |bits: u32| f32::from_bits(bits & 0xFFFF_0000));
    for (s, weights) in panel.chunks_exact(COLS).take(steps).enumerate() {
        for (r, row) in tile.chunks_exact_mut(COLS).take(rows).enumerate() {
            let pair = x[r * stride + s];
            let (x0, x1) = (low(pair), high(pair));
            for (acc, &w) in row.iter_mut().zip(weights) {
                *acc += x0 * low(w) + x1 * high(w);
            }
        }
    }
}
}
