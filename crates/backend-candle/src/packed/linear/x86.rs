//! The register-tile kernels in x86 intrinsics: f32 products with AVX-512 or with AVX2 and FMA
//! on f32 weights or on f16 weights expanded as they load (`vcvtph2ps`), bf16 pairs with
//! AVX-512 BF16's `vdpbf16ps`, and the activations' rounding to bf16 pairs with
//! `vcvtne2ps2bf16`. Each is `unsafe` and compiled for its instructions (`#[target_feature]`):
//! the caller checks the model's `Isa` first. Compiled on x86-64 only.

use std::arch::x86_64::{__m256, __m512};

use super::{COLS, ROWS};

/// A weight type the f32 tile kernels read as f32 lanes: f32 itself, or f16 bits (`u16`)
/// expanded exactly by `vcvtph2ps`.
#[allow(unsafe_code)]
pub(super) trait Lanes: Copy {
    /// 8 weights from `p` as f32.
    ///
    /// # Safety
    /// The CPU has AVX2 and F16C; `p` points at 8 values.
    unsafe fn eight(p: *const Self) -> __m256;
    /// 16 weights from `p` as f32.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `p` points at 16 values.
    unsafe fn sixteen(p: *const Self) -> __m512;
}

impl Lanes for f32 {
    #[inline(always)]
    #[allow(unsafe_code)]
    unsafe fn eight(p: *const Self) -> __m256 {
        // SAFETY: as the caller guarantees.
        unsafe { std::arch::x86_64::_mm256_loadu_ps(p) }
    }

    #[inline(always)]
    #[allow(unsafe_code)]
    unsafe fn sixteen(p: *const Self) -> __m512 {
        // SAFETY: as the caller guarantees.
        unsafe { std::arch::x86_64::_mm512_loadu_ps(p) }
    }
}

impl Lanes for u16 {
    #[inline(always)]
    #[allow(unsafe_code)]
    unsafe fn eight(p: *const Self) -> __m256 {
        use std::arch::x86_64::{_mm_loadu_si128, _mm256_cvtph_ps};
        // SAFETY: as the caller guarantees: 16 bytes read.
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
    }

    #[inline(always)]
    #[allow(unsafe_code)]
    unsafe fn sixteen(p: *const Self) -> __m512 {
        use std::arch::x86_64::{_mm256_loadu_si256, _mm512_cvtph_ps};
        // SAFETY: as the caller guarantees: 32 bytes read.
        unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(p.cast())) }
    }
}

/// Weight rows ahead of the current one that the f32 tile kernels prefetch.
const PREFETCH: usize = 64;
/// Steps ahead of the current one that the bf16 tile kernel prefetches: 8 KiB of its panel
/// (one short sentence, interleaved calls: about 3% faster than 16 KiB, 8% faster than none).
const PREFETCH_BF16: usize = 32;

/// `R` x 64 (`R <= ROWS`) in f32 with AVX-512, weights of type `W`: up to 24 accumulators; per
/// step four weight loads, `R` broadcasts and `4R` fused multiply-adds.
///
/// # Safety
/// The CPU must have AVX-512F; `x` holds ROWS rows of `steps` values `stride` apart and `panel`
/// `steps` rows of 64 values `ld` apart.
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn tile_f32_avx512<const R: usize, W: Lanes>(
    tile: &mut [f32; ROWS * COLS],
    x: &[f32],
    stride: usize,
    panel: &[W],
    ld: usize,
    steps: usize,
) {
    use std::arch::x86_64::{
        _MM_HINT_T0, _mm_prefetch, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_storeu_ps,
    };
    // Cache lines of one step's 64 weights.
    let lines = COLS * size_of::<W>() / 64;
    const V: usize = COLS / 16;
    let (tile_ptr, w_ptr, x_ptr) = (tile.as_mut_ptr(), panel.as_ptr(), x.as_ptr());
    // SAFETY (whole body): offsets stay within the sizes the caller guarantees; prefetches are
    // hints and may point past the panel.
    unsafe {
        let mut c: [[__m512; V]; R] = [[_mm512_set1_ps(0.0); V]; R];
        for (r, row) in c.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(tile_ptr.add(r * COLS + j * 16));
            }
        }
        for s in 0..steps {
            let ws_ptr = w_ptr.add(s * ld);
            let ahead = w_ptr.wrapping_add((s + PREFETCH) * ld).cast::<i8>();
            for line in 0..lines {
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line * 64));
            }
            let ws: [__m512; V] = std::array::from_fn(|j| W::sixteen(ws_ptr.add(j * 16)));
            for (r, row) in c.iter_mut().enumerate() {
                let xv = _mm512_set1_ps(*x_ptr.add(r * stride + s));
                for (v, wv) in row.iter_mut().zip(ws) {
                    *v = _mm512_fmadd_ps(xv, wv, *v);
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

/// `R` x 64 in f32 with AVX2 and FMA, weights of type `W`, 16 columns at a time: up to 12
/// accumulators; per step two weight loads, `R` broadcasts and `2R` fused multiply-adds.
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C; sizes as for [`tile_f32_avx512`].
#[allow(unsafe_code)]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn tile_f32_avx2<const R: usize, W: Lanes>(
    tile: &mut [f32; ROWS * COLS],
    x: &[f32],
    stride: usize,
    panel: &[W],
    ld: usize,
    steps: usize,
) {
    use std::arch::x86_64::{
        _MM_HINT_T0, _mm_prefetch, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_set1_ps, _mm256_storeu_ps,
    };
    let (tile_ptr, w_ptr, x_ptr) = (tile.as_mut_ptr(), panel.as_ptr(), x.as_ptr());
    // SAFETY (whole body): offsets stay within the sizes the caller guarantees; prefetches are
    // hints and may point past the panel.
    unsafe {
        for c0 in (0..COLS).step_by(16) {
            let mut c: [[__m256; 2]; R] = [[_mm256_set1_ps(0.0); 2]; R];
            for (r, row) in c.iter_mut().enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = _mm256_loadu_ps(tile_ptr.add(r * COLS + c0 + j * 8));
                }
            }
            for s in 0..steps {
                let ws_ptr = w_ptr.add(s * ld + c0);
                _mm_prefetch::<_MM_HINT_T0>(w_ptr.wrapping_add((s + PREFETCH) * ld + c0).cast());
                let ws = [W::eight(ws_ptr), W::eight(ws_ptr.add(8))];
                for (r, row) in c.iter_mut().enumerate() {
                    let xv = _mm256_set1_ps(*x_ptr.add(r * stride + s));
                    for (v, wv) in row.iter_mut().zip(ws) {
                        *v = _mm256_fmadd_ps(xv, wv, *v);
                    }
                }
            }
            for (r, row) in c.iter().enumerate() {
                for (j, v) in row.iter().enumerate() {
                    _mm256_storeu_ps(tile_ptr.add(r * COLS + c0 + j * 8), *v);
                }
            }
        }
    }
}

/// `R` x 64 in bf16 with AVX-512 BF16: up to 24 accumulators; per pair step four weight loads,
/// `R` broadcasts and `4R` `vdpbf16ps`.
///
/// # Safety
/// The CPU must have AVX-512 F, BW and BF16; `x` holds ROWS rows of `steps` pairs `stride`
/// apart and `panel` `steps * 64` pairs.
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
pub(super) unsafe fn tile_bf16_avx512<const R: usize>(
    tile: &mut [f32; ROWS * COLS],
    x: &[u32],
    stride: usize,
    panel: &[u32],
    steps: usize,
) {
    use std::arch::x86_64::{
        __m512bh, __m512i, _MM_HINT_T0, _mm_prefetch, _mm512_dpbf16_ps, _mm512_loadu_ps, _mm512_loadu_si512,
        _mm512_set1_epi32, _mm512_setzero_ps, _mm512_storeu_ps,
    };
    const V: usize = COLS / 16;
    let bh = |v: __m512i| -> __m512bh {
        // SAFETY: both are 512 bits of plain data.
        unsafe { std::mem::transmute::<__m512i, __m512bh>(v) }
    };
    let (tile_ptr, w_ptr, x_ptr) = (tile.as_mut_ptr(), panel.as_ptr(), x.as_ptr());
    // SAFETY (whole body): offsets stay within the sizes the caller guarantees; prefetches are
    // hints and may point past the panel.
    unsafe {
        let mut c: [[__m512; V]; R] = [[_mm512_setzero_ps(); V]; R];
        for (r, row) in c.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(tile_ptr.add(r * COLS + j * 16));
            }
        }
        for s in 0..steps {
            let ws_ptr = w_ptr.add(s * COLS);
            let ahead = w_ptr.wrapping_add((s + PREFETCH_BF16) * COLS);
            for line in 0..4 {
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line * 16).cast());
            }
            let ws: [__m512bh; V] = std::array::from_fn(|j| bh(_mm512_loadu_si512(ws_ptr.add(j * 16).cast())));
            for (r, row) in c.iter_mut().enumerate() {
                let xv = bh(_mm512_set1_epi32(*x_ptr.add(r * stride + s) as i32));
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

/// `vcvtne2ps2bf16`: 32 f32 to 32 bf16 (to nearest, ties to even) per step.
///
/// # Safety
/// The CPU must have AVX-512 F and BF16; `row.len()` is a multiple of 32 and `dst` holds half.
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f,avx512bf16")]
pub(super) unsafe fn convert_avx512_bf16(row: &[f32], dst: &mut [u32]) {
    use std::arch::x86_64::{__m512bh, __m512i, _mm512_cvtne2ps_pbh, _mm512_loadu_ps, _mm512_storeu_si512};
    for (values, out) in row.chunks_exact(32).zip(dst.chunks_exact_mut(16)) {
        // SAFETY: 32 values read, 16 u32 (64 bytes) written, as the chunks hold.
        unsafe {
            let (low, high) = (_mm512_loadu_ps(values.as_ptr()), _mm512_loadu_ps(values.as_ptr().add(16)));
            // The second operand fills the low half: values 0..16, then 16..32.
            let packed = _mm512_cvtne2ps_pbh(high, low);
            _mm512_storeu_si512(out.as_mut_ptr().cast(), std::mem::transmute::<__m512bh, __m512i>(packed));
        }
    }
}
