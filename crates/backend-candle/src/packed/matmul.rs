//! Matrix multiplies of the packed path: a safe wrapper over the `gemm` crate (the one candle
//! uses underneath) for strided views, and a kernel for few rows times a weight matrix (AVX-512,
//! AVX2 and plain versions), which streams the weights once from the same row-major copy `gemm`
//! reads, instead of repacking them on every call as `gemm` does.

use gemm::Parallelism;
use rayon::prelude::*;

use super::isa::{Isa, Level, for_each_level};

/// A read-only matrix view: element `(r, c)` is `data[r * row_stride + c * col_stride]`.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> View<'a> {
    /// A dense row-major `rows x cols` matrix.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// The transpose of this view (no copy).
    pub fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    fn check(&self) {
        if self.rows > 0 && self.cols > 0 {
            let last = (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride;
            assert!(last < self.data.len(), "matrix view reaches past its buffer");
        }
    }
}

/// `out = (accumulate ? out : 0) + scale * a · b`, with `out` dense row-major
/// (`a.rows x b.cols`). `threads > 1` splits the work over the current rayon pool.
///
/// # Panics
/// When the shapes do not match or a view reaches past its buffer.
pub fn matmul(out: &mut [f32], a: View<'_>, b: View<'_>, scale: f32, accumulate: bool, threads: usize) {
    assert_eq!(a.cols, b.rows, "inner dimensions differ");
    assert_eq!(out.len(), a.rows * b.cols, "output has the wrong size");
    a.check();
    b.check();
    if out.is_empty() {
        return;
    }
    if a.cols == 0 {
        if !accumulate {
            out.fill(0.0);
        }
        return;
    }
    let parallelism = if threads > 1 { Parallelism::Rayon(threads) } else { Parallelism::None };
    // SAFETY: every index gemm touches is `(r, c)` with `r < rows`, `c < cols` of a view whose
    // last such element lies inside its slice (checked above); `out` is a distinct, exclusively
    // borrowed buffer of exactly `a.rows * b.cols` elements, dense row-major.
    #[allow(unsafe_code)]
    unsafe {
        gemm::gemm(
            a.rows,
            b.cols,
            a.cols,
            out.as_mut_ptr(),
            1,
            b.cols as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Columns of one block of the few-rows kernel: four AVX-512 registers per row.
const COLS: usize = 64;
/// Rows the few-rows kernel keeps in registers at once (4 x 64 accumulators).
const ROWS: usize = 4;

/// `out += x · w` for `x` `(m, k)` and `w` `(k, n)`, all dense row-major; meant for small `m`
/// (a few sequences' tokens), where the product is bound by reading `w`: every weight is read
/// once, in strips of 64 columns. Strips are spread over the current rayon pool when
/// `threads > 1`.
///
/// # Panics
/// When the buffer sizes do not match `m`, `k` and `n`.
pub fn matmul_few_rows(isa: Isa, out: &mut [f32], x: &[f32], w: &[f32], k: usize, n: usize, threads: usize) {
    let m = x.len() / k.max(1);
    assert!(out.len() == m * n && x.len() == m * k && w.len() == k * n, "matrix sizes differ");
    // Rows padded with zeros to a multiple of four once, so every full-width strip runs in the
    // register kernel; the padding rows' results are never written back.
    let rows = m.next_multiple_of(ROWS);
    let padded;
    let x = if rows == m {
        x
    } else {
        padded = [x, &vec![0.0; (rows - m) * k]].concat();
        &padded[..]
    };
    let shared: &[f32] = out;
    let block = |b: usize| -> Vec<f32> {
        let (c0, width) = (b * COLS, COLS.min(n - b * COLS));
        let strip = &w[c0..];
        let mut acc: Vec<f32> = (0..rows)
            .flat_map(|r| if r < m { &shared[r * n + c0..][..width] } else { &[0.0; COLS][..width] })
            .copied()
            .collect();
        for r0 in (0..rows).step_by(ROWS) {
            let acc = &mut acc[r0 * width..(r0 + ROWS) * width];
            let x = &x[r0 * k..(r0 + ROWS) * k];
            if width == COLS {
                block_4x64(isa, acc, x, strip, k, n);
            } else {
                block_any(isa, acc, x, strip, k, width, n);
            }
        }
        acc.truncate(m * width);
        acc
    };
    let blocks = n.div_ceil(COLS);
    let results: Vec<Vec<f32>> =
        if threads > 1 { (0..blocks).into_par_iter().map(block).collect() } else { (0..blocks).map(block).collect() };
    for (b, acc) in results.iter().enumerate() {
        let (c0, width) = (b * COLS, COLS.min(n - b * COLS));
        for (r, row) in acc.chunks_exact(width).enumerate() {
            out[r * n + c0..][..width].copy_from_slice(row);
        }
    }
}

/// Four rows by 64 columns; `w` starts at the strip's first column, its rows `ldw` apart.
fn block_4x64(isa: Isa, acc: &mut [f32], x: &[f32], w: &[f32], k: usize, ldw: usize) {
    assert!(acc.len() == ROWS * COLS && x.len() == ROWS * k && w.len() >= (k - 1) * ldw + COLS);
    #[cfg(target_arch = "x86_64")]
    match isa.level() {
        // SAFETY: the level is one the CPU has (`Isa::detect`), and the sizes asserted above
        // keep every load and store of the kernels inside `acc`, `x` and `w`.
        Level::Avx512 => {
            #[allow(unsafe_code)]
            unsafe {
                block_4x64_avx512(acc, x, w, k, ldw);
            }
            return;
        }
        // SAFETY: as above.
        Level::Avx2 => {
            #[allow(unsafe_code)]
            unsafe {
                block_4x64_avx2(acc, x, w, k, ldw);
            }
            return;
        }
        Level::Scalar => {}
    }
    block_any(isa, acc, x, w, k, COLS, ldw);
}

/// [`block_4x64`] with AVX-512: 16 accumulator registers, four weight loads and sixteen fused
/// multiply-adds per step of `k`.
///
/// # Safety
/// The CPU must have AVX-512F; `acc` holds 4 x 64 values, `x` 4 rows of `k`, and `w` `k` rows
/// of at least 64, `ldw` apart.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f")]
unsafe fn block_4x64_avx512(acc: &mut [f32], x: &[f32], w: &[f32], k: usize, ldw: usize) {
    use std::arch::x86_64::{__m512, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_storeu_ps};
    const V: usize = COLS / 16;
    let (acc_ptr, w_ptr) = (acc.as_mut_ptr(), w.as_ptr());
    // SAFETY (whole body): offsets stay within the sizes the caller guarantees.
    unsafe {
        let mut c: [[__m512; V]; ROWS] = [[_mm512_set1_ps(0.0); V]; ROWS];
        for (r, row) in c.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(acc_ptr.add(r * COLS + j * 16));
            }
        }
        for kk in 0..k {
            let wk = w_ptr.add(kk * ldw);
            let ws: [__m512; V] = std::array::from_fn(|j| _mm512_loadu_ps(wk.add(j * 16)));
            for (r, row) in c.iter_mut().enumerate() {
                let xv = _mm512_set1_ps(*x.get_unchecked(r * k + kk));
                for (v, wv) in row.iter_mut().zip(ws) {
                    *v = _mm512_fmadd_ps(xv, wv, *v);
                }
            }
        }
        for (r, row) in c.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                _mm512_storeu_ps(acc_ptr.add(r * COLS + j * 16), *v);
            }
        }
    }
}

/// [`block_4x64`] with AVX2 and FMA, 16 columns at a time: 8 accumulator registers, two
/// weight loads and eight fused multiply-adds per step of `k`.
///
/// # Safety
/// The CPU must have AVX2 and FMA; sizes as for [`block_4x64_avx512`].
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx2,fma")]
unsafe fn block_4x64_avx2(acc: &mut [f32], x: &[f32], w: &[f32], k: usize, ldw: usize) {
    use std::arch::x86_64::{__m256, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_set1_ps, _mm256_storeu_ps};
    let (acc_ptr, w_ptr) = (acc.as_mut_ptr(), w.as_ptr());
    // SAFETY (whole body): offsets stay within the sizes the caller guarantees.
    unsafe {
        for c0 in (0..COLS).step_by(16) {
            let mut c: [[__m256; 2]; ROWS] = [[_mm256_set1_ps(0.0); 2]; ROWS];
            for (r, row) in c.iter_mut().enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = _mm256_loadu_ps(acc_ptr.add(r * COLS + c0 + j * 8));
                }
            }
            for kk in 0..k {
                let wk = w_ptr.add(kk * ldw + c0);
                let ws = [_mm256_loadu_ps(wk), _mm256_loadu_ps(wk.add(8))];
                for (r, row) in c.iter_mut().enumerate() {
                    let xv = _mm256_set1_ps(*x.get_unchecked(r * k + kk));
                    for (v, wv) in row.iter_mut().zip(ws) {
                        *v = _mm256_fmadd_ps(xv, wv, *v);
                    }
                }
            }
            for (r, row) in c.iter().enumerate() {
                for (j, v) in row.iter().enumerate() {
                    _mm256_storeu_ps(acc_ptr.add(r * COLS + c0 + j * 8), *v);
                }
            }
        }
    }
}

for_each_level! {
/// Any rows by a strip of any width up to [`COLS`]: the edges of a product, and the scalar level.
fn block_any(acc: &mut [f32], x: &[f32], w: &[f32], k: usize, width: usize, ldw: usize) {
    for (row, xs) in acc.chunks_exact_mut(width).zip(x.chunks_exact(k)) {
        for (kk, &xv) in xs.iter().enumerate() {
            for (a, &wv) in row.iter_mut().zip(&w[kk * ldw..][..width]) {
                *a += xv * wv;
            }
        }
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: View<'_>, b: View<'_>) -> Vec<f32> {
        let mut out = vec![0.0; a.rows * b.cols];
        for r in 0..a.rows {
            for c in 0..b.cols {
                out[r * b.cols + c] = (0..a.cols)
                    .map(|k| a.data[r * a.row_stride + k * a.col_stride] * b.data[k * b.row_stride + c * b.col_stride])
                    .sum();
            }
        }
        out
    }

    #[test]
    fn strided_views_multiply_like_the_definition() {
        let a: Vec<f32> = (0..35).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..42).map(|i| (i as f32 * 0.11).cos()).collect();
        let (av, bv) = (View::rows(&a, 5, 7), View::rows(&b, 6, 7).t());
        let want = naive(av, bv);
        for threads in [1, 2] {
            let mut out = vec![1.0; 30];
            matmul(&mut out, av, bv, 1.0, true, threads);
            for (o, w) in out.iter().zip(&want) {
                assert!((o - (w + 1.0)).abs() < 1e-5);
            }
            matmul(&mut out, av, bv, 0.5, false, threads);
            for (o, w) in out.iter().zip(&want) {
                assert!((o - 0.5 * w).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn the_few_rows_kernel_matches_gemm_on_every_edge_at_every_level() {
        let levels: Vec<Isa> = ["auto", "avx2", "scalar"].iter().map(|c| Isa::detect(c).expect("cap")).collect();
        for (m, k, n) in [(1, 3, 5), (4, 7, 64), (6, 9, 130), (9, 384, 192), (3, 5, 64)] {
            let x: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let w: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
            let start: Vec<f32> = (0..m * n).map(|i| i as f32 * 0.01).collect();
            let mut want = start.clone();
            matmul(&mut want, View::rows(&x, m, k), View::rows(&w, k, n), 1.0, true, 1);
            for &isa in &levels {
                for threads in [1, 2] {
                    let mut got = start.clone();
                    matmul_few_rows(isa, &mut got, &x, &w, k, n, threads);
                    for (g, w) in got.iter().zip(&want) {
                        assert!((g - w).abs() < 1e-4, "{isa:?} ({m}, {k}, {n}): {g} vs {w}");
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "past its buffer")]
    fn a_view_past_its_buffer_is_refused() {
        let a = vec![0.0; 6];
        let mut out = vec![0.0; 4];
        let bad = View { data: &a, rows: 2, cols: 3, row_stride: 4, col_stride: 1 };
        matmul(&mut out, View::rows(&a, 2, 3), bad.t(), 1.0, false, 1);
    }
}
