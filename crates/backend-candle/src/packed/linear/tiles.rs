//! One task's share of a product: its panels over its rows, the accumulators in whole register
//! tiles, `k` walked in slices that stay in the L1 cache, and each tile run by the kernel that
//! the model's `Isa` and the weights' type pick.

#[cfg(target_arch = "x86_64")]
use super::int8::AVX2_LARGEST;
use super::int8::SPAN;
use super::int8::tile_int8_portable;
#[cfg(target_arch = "x86_64")]
use super::int8::{tile_int8_avx2, tile_int8_vnni};
use super::panels::{Panels, Weights};
use super::portable::{tile_bf16_portable, tile_f16_portable, tile_f32_portable};
#[cfg(target_arch = "x86_64")]
use super::x86::{tile_bf16_avx512, tile_f32_avx2, tile_f32_avx512};
use super::{COLS, ROWS};
use crate::packed::isa::Isa;
#[cfg(target_arch = "x86_64")]
use crate::packed::isa::Level;

/// Calls a tile kernel with its first `rows` rows (1 to [`ROWS`]) as the const parameter `R`,
/// followed by the kernel's weight type where it has one.
#[cfg(target_arch = "x86_64")]
macro_rules! by_rows {
    ($rows:expr, $kernel:ident $(<$w:ty>)? ($($arg:expr),*)) => {
        match $rows {
            1 => $kernel::<1 $(, $w)?>($($arg),*),
            2 => $kernel::<2 $(, $w)?>($($arg),*),
            3 => $kernel::<3 $(, $w)?>($($arg),*),
            4 => $kernel::<4 $(, $w)?>($($arg),*),
            5 => $kernel::<5 $(, $w)?>($($arg),*),
            _ => $kernel::<ROWS $(, $w)?>($($arg),*),
        }
    };
}

/// The activations, padded to whole tiles.
pub(super) enum Input {
    F32(Vec<f32>),
    Bf16(Vec<u32>),
    /// Rows of int8 in groups of four (`Panels::activation_groups` a row: with two-byte
    /// activations the first bytes, then the second ones), with a scale per row and [`SPAN`]
    /// steps (zero for the padding).
    Int8 {
        groups: Vec<u32>,
        scales: Vec<f32>,
    },
}

/// Panels `run` for the rows of `out` (`ld` apart; the run's columns start at `c0`),
/// activation rows from `first`. The rows' accumulators live in blocks of whole tiles; `k` is
/// walked in slices of `K_BLOCK` steps (in int8 of a [`SPAN`]), each slice of each panel used
/// by every tile while it is in the L1 cache, so the weights come from memory once however many
/// rows there are.
#[allow(clippy::too_many_arguments)]
pub(super) fn panels_strided(
    isa: Isa,
    out: &mut [f32],
    ld: usize,
    c0: usize,
    input: &Input,
    first: usize,
    w: &Panels,
    run: std::ops::Range<usize>,
) {
    let count = out.len() / ld;
    let tiles = count.div_ceil(ROWS);
    let columns = |j: usize| (c0 + j * COLS, COLS.min(w.n - (run.start + j) * COLS));
    let mut acc = vec![[0.0f32; ROWS * COLS]; tiles * run.len()];
    for (r, row) in out.chunks_exact(ld).enumerate() {
        for j in 0..run.len() {
            let (c, width) = columns(j);
            acc[j * tiles + r / ROWS][(r % ROWS) * COLS..][..width].copy_from_slice(&row[c..][..width]);
        }
    }
    let mut block = |j: usize, p: usize, s0: usize| {
        let steps = w.block().min(w.steps - s0);
        for (t, tile) in acc[j * tiles..][..tiles].iter_mut().enumerate() {
            let rows = (count - t * ROWS).min(ROWS);
            run_tile(isa, tile, rows, input, first + t * ROWS, w, p, s0, steps);
        }
    };
    if w.streams() {
        // Contiguous panels: one panel after another, each read front to back, where the
        // kernels' prefetches run ahead (into the next panel at the end of one).
        for (j, p) in run.clone().enumerate() {
            for s0 in (0..w.steps).step_by(w.block()) {
                block(j, p, s0);
            }
        }
    } else {
        // Row-major f32: all the run's panels at each step, so the weights read are stretches
        // of whole rows.
        for s0 in (0..w.steps).step_by(w.block()) {
            for (j, p) in run.clone().enumerate() {
                block(j, p, s0);
            }
        }
    }
    for (r, row) in out.chunks_exact_mut(ld).enumerate() {
        for j in 0..run.len() {
            let (c, width) = columns(j);
            row[c..][..width].copy_from_slice(&acc[j * tiles + r / ROWS][(r % ROWS) * COLS..][..width]);
        }
    }
}

/// One register tile: activation rows `r0..r0 + rows` (`rows <= ROWS`; a sentence's last tile
/// is often partly empty) times steps `s0..s0 + steps` of panel `p`, added to `tile`.
#[allow(clippy::too_many_arguments)]
fn run_tile(
    isa: Isa,
    tile: &mut [f32; ROWS * COLS],
    rows: usize,
    input: &Input,
    r0: usize,
    w: &Panels,
    p: usize,
    s0: usize,
    steps: usize,
) {
    let stride = w.steps;
    // f32 products on f32 or f16 weights: the widest kernel the level has, else plain code.
    macro_rules! f32_products {
        ($w:ty, $panel:expr, $ld:expr, $x:expr, $portable:ident) => {{
            let (panel, ld) = ($panel, $ld);
            let x = &$x[r0 * stride + s0..][..(ROWS - 1) * stride + steps];
            #[cfg(target_arch = "x86_64")]
            match isa.level() {
                // SAFETY: the level is one the CPU has (`Isa::detect`); the slices above hold
                // ROWS rows of `steps` activations `stride` apart and `steps` rows of 64 weights
                // `ld` apart, all the kernel reads.
                Level::Avx512 => {
                    #[allow(unsafe_code)]
                    unsafe {
                        by_rows!(rows, tile_f32_avx512<$w>(tile, x, stride, panel, ld, steps));
                    }
                    return;
                }
                // SAFETY: as above.
                Level::Avx2 => {
                    #[allow(unsafe_code)]
                    unsafe {
                        by_rows!(rows, tile_f32_avx2<$w>(tile, x, stride, panel, ld, steps));
                    }
                    return;
                }
                Level::Scalar => {}
            }
            $portable(isa, tile, rows, x, stride, panel, ld, steps);
        }};
    }
    match (w.weights(p, s0, steps), input) {
        ((Weights::F32(panel), ld), Input::F32(x)) => f32_products!(f32, panel, ld, x, tile_f32_portable),
        ((Weights::F16(panel), ld), Input::F32(x)) => f32_products!(u16, panel, ld, x, tile_f16_portable),
        ((Weights::Bf16(panel), _), Input::Bf16(x)) => {
            let x = &x[r0 * stride + s0..][..(ROWS - 1) * stride + steps];
            #[cfg(target_arch = "x86_64")]
            if isa.bf16() {
                // SAFETY: `isa.bf16()` holds only when the CPU has AVX-512 BF16; the slices hold
                // what the kernel reads, as above.
                #[allow(unsafe_code)]
                unsafe {
                    by_rows!(rows, tile_bf16_avx512(tile, x, stride, panel, steps));
                }
                return;
            }
            tile_bf16_portable(isa, tile, rows, x, stride, panel, steps);
        }
        ((Weights::Int8 { groups: panel, scales: w_scales, sums, largest }, _), Input::Int8 { groups, scales }) => {
            let (spans, width) = (stride.div_ceil(SPAN), w.activation_groups());
            // The first bytes, then the second ones where a row has them.
            for (offset, unit) in [(0, 1.0), (stride, 254.0)].into_iter().take(width / stride) {
                let x = &groups[r0 * width + offset + s0..][..(ROWS - 1) * width + steps];
                let x_scales: [f32; ROWS] = std::array::from_fn(|r| scales[(r0 + r) * spans + s0 / SPAN] / unit);
                let x_scales = &x_scales;
                #[cfg(target_arch = "x86_64")]
                {
                    // SAFETY: `isa.vnni()` holds only when the CPU has AVX-512 VNNI, and a level
                    // of AVX2 or more only when it has AVX2 and FMA; the AVX2 kernel gets only
                    // the weights it takes; the slices hold what the kernels read, as above.
                    #[allow(unsafe_code)]
                    if isa.vnni() {
                        unsafe {
                            by_rows!(rows, tile_int8_vnni(tile, x, width, panel, steps, x_scales, w_scales, sums))
                        };
                        continue;
                    } else if isa.level() >= Level::Avx2 && largest <= AVX2_LARGEST {
                        unsafe {
                            by_rows!(rows, tile_int8_avx2(tile, x, width, panel, steps, x_scales, w_scales, sums))
                        };
                        continue;
                    }
                }
                let _ = (sums, largest);
                tile_int8_portable(isa, tile, rows, x, width, panel, steps, x_scales, w_scales);
            }
        }
        _ => unreachable!("the activations are prepared for the weights' type"),
    }
}
