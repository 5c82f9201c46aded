//! Element-wise kernels of the packed CPU path, each one pass over memory: bias + GELU, layer
//! norm, softmax; and the attention of one head over one sequence (short sequences, and every
//! length below AVX-512). Written as plain loops the compiler vectorises; `for_each_level`
//! compiles each for AVX-512 and AVX2 as well, and the `Isa` the model was loaded with picks one
//! at run time.

use super::isa::{Isa, for_each_level};

/// `e^x` for `x` in about [-87, 88], within 2 ulp: range reduction to `2^n * e^r` with
/// `|r| <= ln2 / 2` and a degree-6 polynomial. Branch-free, so loops over it vectorise.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer without a call.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2_E + ROUND) - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

/// `erf(x)` within 1.5e-7 (Abramowitz and Stegun 7.1.26), branch-free.
#[inline(always)]
fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [0.254_829_6, -0.284_496_74, 1.421_413_7, -1.453_152_1, 1.061_405_4];
    let a = x.abs();
    let t = 1.0 / (1.0 + P * a);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let y = 1.0 - poly * exp(-a * a);
    y.copysign(x)
}

/// Lanes of the partial sums and maxima below: independent accumulators let the compiler
/// vectorise a reduction it may not reorder.
const LANES: usize = 16;

/// Sum of `xs`, in `LANES` independent partial sums.
#[inline(always)]
fn sum(xs: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (a, x) in acc.iter_mut().zip(chunk) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Largest element of `xs` (`-inf` when empty), in `LANES` independent maxima.
#[inline(always)]
fn max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder().iter().fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    for chunk in chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a = if x > *a { x } else { *a };
        }
    }
    acc.iter().fold(tail, |m, &x| if x > m { x } else { m })
}

/// The activations BERT configs name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `x * Φ(x)` with the exact (erf) normal CDF.
    Gelu,
    /// The tanh approximation of GELU.
    GeluTanh,
    /// `max(x, 0)`.
    Relu,
}

for_each_level! {
/// Applies `act` to every element of `xs`, in place.
pub fn activate(xs: &mut [f32], act: Activation) {
    match act {
        Activation::Gelu => {
            for x in xs.iter_mut() {
                *x = 0.5 * *x * (1.0 + erf(*x * std::f32::consts::FRAC_1_SQRT_2));
            }
        }
        Activation::GeluTanh => {
            const C: f32 = 0.797_884_6; // sqrt(2 / pi)
            for x in xs.iter_mut() {
                let u = C * (*x + 0.044_715 * *x * *x * *x);
                // tanh(u) = 1 - 2 / (e^{2u} + 1)
                let tanh = 1.0 - 2.0 / (exp(2.0 * u) + 1.0);
                *x = 0.5 * *x * (1.0 + tanh);
            }
        }
        Activation::Relu => {
            for x in xs.iter_mut() {
                *x = x.max(0.0);
            }
        }
    }
}
}

for_each_level! {
/// Layer norm of each `width`-long row of `xs`, in place: `(x - mean) / sqrt(var + eps) * gain + bias`.
pub fn layer_norm(xs: &mut [f32], gain: &[f32], bias: &[f32], eps: f32) {
    let width = gain.len();
    for row in xs.chunks_exact_mut(width) {
        let mean = sum(row) / width as f32;
        for x in row.iter_mut() {
            *x -= mean;
        }
        let mut squares = [0.0f32; LANES];
        let chunks = row.chunks_exact(LANES);
        let tail: f32 = chunks.remainder().iter().map(|x| x * x).sum();
        for chunk in chunks {
            for (s, x) in squares.iter_mut().zip(chunk) {
                *s += x * x;
            }
        }
        let var = (squares.iter().sum::<f32>() + tail) / width as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((x, g), b) in row.iter_mut().zip(gain).zip(bias) {
            *x = *x * inv * g + b;
        }
    }
}
}

for_each_level! {
/// Softmax of each `width`-long row of `xs`, in place.
pub fn softmax_rows(xs: &mut [f32], width: usize) {
    for row in xs.chunks_exact_mut(width) {
        let max = max(row);
        for x in row.iter_mut() {
            *x = exp(*x - max);
        }
        let inv = 1.0 / sum(row);
        for x in row.iter_mut() {
            *x *= inv;
        }
    }
}
}

/// Query rows the attention kernel takes at once: independent accumulators for the vector units.
const QUERY_ROWS: usize = 4;

/// Attention of one head over one sequence in plain loops: `scores = scale · q kᵀ`, a softmax
/// per row, then `out = scores · v`. Row `i` of q, k and v starts at `i * stride` of its slice
/// and is `d` long; `out` holds `len * d`. The operands are first copied out, `kᵀ` and `v` padded
/// to whole vectors and `q` (scaled) to whole groups of rows, so both products are register tiles
/// of [`QUERY_ROWS`] rows by one vector, summed in registers.
#[allow(clippy::too_many_arguments)]
pub fn attend(
    isa: Isa,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    len: usize,
    d: usize,
    stride: usize,
    scale: f32,
    out: &mut [f32],
) {
    let (width, depth, rows) =
        (len.next_multiple_of(LANES), d.next_multiple_of(LANES), len.next_multiple_of(QUERY_ROWS));
    let mut queries = vec![0.0f32; rows * d];
    let mut keys = vec![0.0f32; d * width];
    let mut values = vec![0.0f32; len * depth];
    for (j, ((query, key), value)) in q.chunks(stride).zip(k.chunks(stride)).zip(v.chunks(stride)).take(len).enumerate()
    {
        for (c, (&qc, &kc)) in query[..d].iter().zip(&key[..d]).enumerate() {
            queries[j * d + c] = qc * scale;
            keys[c * width + j] = kc;
        }
        values[j * depth..][..d].copy_from_slice(&value[..d]);
    }
    let mut scores = vec![0.0f32; rows * width];
    let mut context = vec![0.0f32; rows * depth];
    attend_tiles(isa, &queries, &keys, &values, len, d, width, depth, &mut scores, &mut context);
    for (row, values) in out.chunks_exact_mut(d).zip(context.chunks_exact(depth)) {
        row.copy_from_slice(&values[..d]);
    }
}

/// `Σ_s a[r][s] · b[s][c0..c0 + LANES]` for the [`QUERY_ROWS`] rows of `a` (`a_stride` apart),
/// `s` over the rows of `b` (`b_stride` apart): one vector per row, summed in registers.
#[inline(always)]
fn register_tile(a: &[f32], a_stride: usize, b: &[f32], b_stride: usize, c0: usize) -> [[f32; LANES]; QUERY_ROWS] {
    let mut acc = [[0.0f32; LANES]; QUERY_ROWS];
    for (s, row) in b.chunks_exact(b_stride).enumerate() {
        let row = &row[c0..c0 + LANES];
        for (r, lanes) in acc.iter_mut().enumerate() {
            let x = a[r * a_stride + s];
            for (acc, y) in lanes.iter_mut().zip(row) {
                *acc += x * y;
            }
        }
    }
    acc
}

for_each_level! {
/// [`attend`] on its padded copies: `queries` `(rows, d)`, `keys` `(d, width)`, `values`
/// `(len, depth)` (`width` and `depth` whole vectors, `rows` whole groups); `scores`
/// `(rows, width)` and `context` `(rows, depth)` are written.
fn attend_tiles(queries: &[f32], keys: &[f32], values: &[f32], len: usize, d: usize, width: usize, depth: usize, scores: &mut [f32], context: &mut [f32]) {
    for (group, (tile, query)) in scores.chunks_exact_mut(QUERY_ROWS * width).zip(queries.chunks_exact(QUERY_ROWS * d)).enumerate() {
        for j0 in (0..width).step_by(LANES) {
            let acc = register_tile(query, d, keys, width, j0);
            for (r, a) in acc.iter().enumerate() {
                tile[r * width + j0..][..LANES].copy_from_slice(a);
            }
        }
        // Softmax of each real row over the real keys; padding rows stay zero.
        for (r, row) in tile.chunks_exact_mut(width).enumerate() {
            if group * QUERY_ROWS + r >= len {
                row.fill(0.0);
                continue;
            }
            let top = max(&row[..len]);
            for x in row.iter_mut() {
                *x = exp(*x - top);
            }
            let inv = 1.0 / sum(&row[..len]);
            for x in row[..len].iter_mut() {
                *x *= inv;
            }
        }
    }
    for (tile, out) in scores.chunks_exact(QUERY_ROWS * width).zip(context.chunks_exact_mut(QUERY_ROWS * depth)) {
        for c0 in (0..depth).step_by(LANES) {
            let acc = register_tile(tile, width, values, depth, c0);
            for (r, a) in acc.iter().enumerate() {
                out[r * depth + c0..][..LANES].copy_from_slice(a);
            }
        }
    }
}
}

/// Fills each `bias.len()`-wide row of `out` with `bias` (the starting value of a matmul that
/// accumulates onto it).
pub fn fill_rows(out: &mut [f32], bias: &[f32]) {
    for row in out.chunks_exact_mut(bias.len()) {
        row.copy_from_slice(bias);
    }
}

/// `out[i] = a[i] + b[i % b.len()]`: a residual plus a bias broadcast over rows.
pub fn add_rows(out: &mut [f32], a: &[f32], bias: &[f32]) {
    for (out_row, a_row) in out.chunks_exact_mut(bias.len()).zip(a.chunks_exact(bias.len())) {
        for ((o, x), b) in out_row.iter_mut().zip(a_row).zip(bias) {
            *o = x + b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every level this CPU can run, so each compiled version is checked.
    fn levels() -> Vec<Isa> {
        ["auto", "avx2", "scalar"].iter().map(|cap| Isa::detect(cap).expect("known cap")).collect()
    }

    #[test]
    fn exp_matches_std_over_its_range() {
        let mut worst: f32 = 0.0;
        for i in -8700..=8800 {
            let x = i as f32 / 100.0;
            let rel = ((exp(x) - x.exp()) / x.exp()).abs();
            worst = worst.max(rel);
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert!((0.0..1e-37).contains(&exp(-1000.0)), "clamped, not NaN or infinite");
    }

    #[test]
    fn gelu_matches_the_erf_definition() {
        for isa in levels() {
            let xs: Vec<f32> = (-1000..=1000).map(|i| i as f32 / 100.0).collect();
            let mut ys = xs.clone();
            activate(isa, &mut ys, Activation::Gelu);
            for (x, y) in xs.iter().zip(&ys) {
                let exact = 0.5 * f64::from(*x) * (1.0 + libm::erf(f64::from(*x) / std::f64::consts::SQRT_2));
                let error = (f64::from(*y) - exact).abs();
                assert!(error < 2e-6 * (1.0 + exact.abs()), "{isa:?}: gelu({x}) = {y}, want {exact}");
            }
        }
    }

    #[test]
    fn tanh_gelu_and_relu() {
        for isa in levels() {
            let mut ys = vec![-3.0, -0.5, 0.0, 0.5, 3.0];
            activate(isa, &mut ys, Activation::GeluTanh);
            for (x, y) in [-3.0f64, -0.5, 0.0, 0.5, 3.0].iter().zip(&ys) {
                let want = 0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh());
                assert!((f64::from(*y) - want).abs() < 1e-6, "{isa:?} {x}: {y} vs {want}");
            }
            let mut ys = vec![-1.0, 2.0];
            activate(isa, &mut ys, Activation::Relu);
            assert_eq!(ys, [0.0, 2.0]);
        }
    }

    #[test]
    fn layer_norm_centres_and_scales_each_row() {
        for isa in levels() {
            let mut xs = vec![1.0, 2.0, 3.0, 4.0, 10.0, 10.0, 10.0, 14.0];
            layer_norm(isa, &mut xs, &[1.0, 1.0, 2.0, 1.0], &[0.0, 0.0, 0.0, 1.0], 1e-12);
            let first = [-1.341_640_8, -0.447_213_6, 0.894_427_2, 2.341_640_8];
            for (x, want) in xs[..4].iter().zip(first) {
                assert!((x - want).abs() < 1e-5, "{isa:?}: {xs:?}");
            }
            assert!((xs[4] + 0.577_350_3).abs() < 1e-5 && (xs[7] - (1.0 + 1.732_050_8)).abs() < 1e-5, "{xs:?}");
        }
    }

    #[test]
    fn attention_matches_the_definition_at_every_level() {
        // Rows `stride` apart with other values between them, lengths on and off the vector width.
        for (len, d, stride) in [(1, 4, 12), (5, 32, 100), (16, 32, 96), (21, 32, 1152), (70, 8, 30)] {
            let at =
                |p: usize| -> Vec<f32> { (0..len * stride).map(|i| ((i * (p + 3)) as f32 * 0.013).sin()).collect() };
            let (q, k, v) = (at(0), at(1), at(2));
            let scale = 1.0 / (d as f64).sqrt();
            let mut want = vec![0.0f64; len * d];
            for i in 0..len {
                let logits: Vec<f64> = (0..len)
                    .map(|j| {
                        scale * (0..d).map(|c| f64::from(q[i * stride + c]) * f64::from(k[j * stride + c])).sum::<f64>()
                    })
                    .collect();
                let top = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let total: f64 = logits.iter().map(|l| (l - top).exp()).sum();
                for (j, l) in logits.iter().enumerate() {
                    for c in 0..d {
                        want[i * d + c] += (l - top).exp() / total * f64::from(v[j * stride + c]);
                    }
                }
            }
            for isa in levels() {
                let mut out = vec![f32::NAN; len * d];
                attend(isa, &q, &k, &v, len, d, stride, scale as f32, &mut out);
                for (o, w) in out.iter().zip(&want) {
                    assert!((f64::from(*o) - w).abs() < 1e-5, "{isa:?} len {len}: {o} vs {w}");
                }
            }
        }
    }

    #[test]
    fn softmax_rows_sum_to_one_and_keep_order() {
        for isa in levels() {
            let mut xs = vec![1.0, 2.0, 3.0, -100.0, 0.0, 100.0];
            softmax_rows(isa, &mut xs, 3);
            let want = [0.090_030_57, 0.244_728_48, 0.665_240_94];
            for (x, w) in xs[..3].iter().zip(want) {
                assert!((x - w).abs() < 1e-6, "{isa:?}: {xs:?}");
            }
            assert!((xs[5] - 1.0).abs() < 1e-6 && xs[3] < 1e-30, "{xs:?}");
        }
    }
}
