//! Matrix multiplies of the packed path: a safe wrapper over the `gemm` crate (the one candle
//! uses underneath) for strided views, and a kernel for few rows times a weight matrix, which
//! streams the weights once instead of repacking them on every call as `gemm` does.

use gemm::Parallelism;
use rayon::prelude::*;

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

/// A `(k, n)` weight matrix cut into column panels of [`COLS`] (the last one narrower when `n`
/// is not a multiple), each panel `(k, width)` row-major and contiguous, so a kernel reading one
/// panel streams memory instead of striding across rows.
pub struct Panels {
    data: Vec<f32>,
    k: usize,
    n: usize,
}

impl Panels {
    /// Cuts `w`, `(k, n)` row-major, into panels.
    pub fn new(w: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(w.len(), k * n, "matrix size differs");
        let mut data = Vec::with_capacity(k * n);
        for c0 in (0..n).step_by(COLS) {
            let width = COLS.min(n - c0);
            for row in w.chunks_exact(n) {
                data.extend_from_slice(&row[c0..c0 + width]);
            }
        }
        Self { data, k, n }
    }

    /// Values held.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    fn panel(&self, b: usize) -> (&[f32], usize) {
        let (c0, width) = (b * COLS, COLS.min(self.n - b * COLS));
        (&self.data[c0 * self.k..][..self.k * width], width)
    }
}

/// `out += x · w` for `x` `(m, k)` and `w` `(k, n)` in panels, `out` dense row-major; meant for
/// small `m` (a few sequences' tokens), where the product is bound by reading `w`: every weight
/// is read once. Panels are spread over the current rayon pool when `threads > 1`.
///
/// # Panics
/// When the buffer sizes do not match `m` and the panels' shape.
pub fn matmul_few_rows(out: &mut [f32], x: &[f32], w: &Panels, m: usize, threads: usize) {
    let (k, n) = (w.k, w.n);
    assert!(out.len() == m * n && x.len() == m * k, "matrix sizes differ");
    // Rows padded with zeros to a multiple of four once, so every full-width panel runs in the
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
        let (panel, width) = w.panel(b);
        let c0 = b * COLS;
        let mut acc: Vec<f32> = (0..rows)
            .flat_map(|r| if r < m { &shared[r * n + c0..][..width] } else { &[0.0; COLS][..width] })
            .copied()
            .collect();
        for r0 in (0..rows).step_by(ROWS) {
            let acc = &mut acc[r0 * width..(r0 + ROWS) * width];
            let x = &x[r0 * k..(r0 + ROWS) * k];
            if width == COLS {
                block_4x64(acc, x, panel, k);
            } else {
                block_any(acc, x, panel, k, width);
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

/// Four rows by 64 columns, accumulators in registers; `w` starts at the block's first column.
fn block_4x64(acc: &mut [f32], x: &[f32], w: &[f32], k: usize) {
    assert!(acc.len() == ROWS * COLS && x.len() == ROWS * k && w.len() == k * COLS);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F (checked just above), and the sizes asserted above keep
        // every load and store of the kernel inside `acc`, `x` and `w`.
        #[allow(unsafe_code)]
        unsafe {
            block_4x64_avx512(acc, x, w, k);
        }
        return;
    }
    block_any(acc, x, w, k, COLS);
}

/// [`block_4x64`] with AVX-512: 16 accumulator registers, four weight loads and sixteen fused
/// multiply-adds per step of `k`.
///
/// # Safety
/// The CPU must have AVX-512F; `acc` holds 4 x 64 values, `x` 4 rows of `k`, and `w` `k` rows
/// of 64.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f")]
unsafe fn block_4x64_avx512(acc: &mut [f32], x: &[f32], w: &[f32], k: usize) {
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
            let wk = w_ptr.add(kk * COLS);
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

/// Any rows by a panel of any width up to [`COLS`]: the edges of a product.
fn block_any(acc: &mut [f32], x: &[f32], w: &[f32], k: usize, width: usize) {
    for (row, xs) in acc.chunks_exact_mut(width).zip(x.chunks_exact(k)) {
        for (&xv, weights) in xs.iter().zip(w.chunks_exact(width)) {
            for (a, &wv) in row.iter_mut().zip(weights) {
                *a += xv * wv;
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
    fn the_few_rows_kernel_matches_gemm_on_every_edge() {
        for (m, k, n) in [(1, 3, 5), (4, 7, 64), (6, 9, 130), (9, 384, 192), (3, 5, 64)] {
            let x: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let w: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
            let start: Vec<f32> = (0..m * n).map(|i| i as f32 * 0.01).collect();
            let mut want = start.clone();
            matmul(&mut want, View::rows(&x, m, k), View::rows(&w, k, n), 1.0, true, 1);
            for threads in [1, 2] {
                let mut got = start.clone();
                matmul_few_rows(&mut got, &x, &Panels::new(&w, k, n), m, threads);
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() < 1e-4, "({m}, {k}, {n}): {g} vs {w}");
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
