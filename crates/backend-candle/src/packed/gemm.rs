//! A safe wrapper over the `gemm` crate (the one candle uses underneath) for strided views: the
//! attention products of long sequences on AVX-512, and the f32 linear products of many rows on
//! AVX-512. The linear layers' other products have their own kernels (`linear/`).

use gemm::Parallelism;

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
    matmul_strided(out, b.cols, a, b, scale, accumulate, threads);
}

/// [`matmul`] into an `out` whose rows are `ld` apart (`ld >= b.cols`): a block of columns of a
/// wider matrix.
///
/// # Panics
/// When the shapes do not match or a view reaches past its buffer.
pub fn matmul_strided(
    out: &mut [f32],
    ld: usize,
    a: View<'_>,
    b: View<'_>,
    scale: f32,
    accumulate: bool,
    threads: usize,
) {
    assert_eq!(a.cols, b.rows, "inner dimensions differ");
    assert!(ld >= b.cols, "output rows overlap");
    assert!(a.rows == 0 || out.len() >= (a.rows - 1) * ld + b.cols, "output has the wrong size");
    a.check();
    b.check();
    if out.is_empty() {
        return;
    }
    if a.cols == 0 {
        if !accumulate {
            out.chunks_mut(ld).for_each(|row| row[..b.cols].fill(0.0));
        }
        return;
    }
    let parallelism = if threads > 1 { Parallelism::Rayon(threads) } else { Parallelism::None };
    // SAFETY: every index gemm touches is `(r, c)` with `r < rows`, `c < cols` of a view whose
    // last such element lies inside its slice (checked above); `out` is a distinct, exclusively
    // borrowed buffer holding `a.rows` rows of `b.cols` elements, `ld` apart (checked above).
    #[allow(unsafe_code)]
    unsafe {
        gemm::gemm(
            a.rows,
            b.cols,
            a.cols,
            out.as_mut_ptr(),
            1,
            ld as isize,
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
    #[should_panic(expected = "past its buffer")]
    fn a_view_past_its_buffer_is_refused() {
        let a = vec![0.0; 6];
        let mut out = vec![0.0; 4];
        let bad = View { data: &a, rows: 2, cols: 3, row_stride: 4, col_stride: 1 };
        matmul(&mut out, View::rows(&a, 2, 3), bad.t(), 1.0, false, 1);
    }
}
