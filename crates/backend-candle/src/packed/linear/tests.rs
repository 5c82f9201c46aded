//! The products of every kind of panels at every level against an exact reference, for odd
//! shapes and few rows and many.

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
fn check_against(panels: &Build, reference: &dyn Fn(Isa) -> Box<Reference>, tolerance: f64) {
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
                            values.iter().map(move |v| (top / 127.0, (v * inverse).round_ties_even() as i64))
                        })
                        .collect()
                })
                .collect();
            // Per span and column, the weights' scale.
            let w_scales: Vec<Vec<f32>> = (0..k)
                .step_by(span)
                .map(|j0| {
                    (0..n).map(|c| largest(&mut (j0..(j0 + span).min(k)).map(|r| w[r * n + c])) / top_byte).collect()
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

#[test]
fn activation_rows_round_to_bytes_ties_to_even_stored_128_above_at_every_level() {
    // Two spans at scale 1 (each span's largest is 127): ties, signs, negative zero; the second
    // span is 6 values long, so its last group holds two bytes of padding.
    let mut row: Vec<f32> = vec![127.0, -127.0, 0.5, 1.5, -2.5, -0.5, -0.0, 2.4, -2.6];
    row.resize(64, 0.25);
    row.extend([127.0, 63.5, -1.0, 0.0, 0.5, -3.5]);
    // A byte as stored: the rounded value plus 128.
    let stored = |v: f32| (v.round_ties_even() as i32 + 128) as u8;
    let mut first: Vec<u8> = row.iter().map(|&v| stored(v)).collect();
    first.resize(72, 128);
    // What each value leaves after its byte, at 254 per unit.
    let mut second: Vec<u8> = row.iter().map(|&v| stored((v - v.round_ties_even()) * 254.0)).collect();
    second.resize(72, 128);
    assert_eq!((first[2], first[3], first[4], first[6], first[65]), (128, 130, 126, 128, 192), "ties go to even");
    assert_eq!((second[2], second[7]), (255, 230), "0.5 leaves 127, 2.4 leaves 0.4 · 254 = 101.6");
    let bytes = |groups: &[u32]| groups.iter().flat_map(|g| g.to_le_bytes()).collect::<Vec<u8>>();
    for isa in levels() {
        let (mut one, mut two, mut scales) = (vec![0u32; 18], vec![0u32; 36], vec![0.0f32; 2]);
        int8::quantize_row(isa, &row, &mut one, &mut scales);
        assert_eq!((bytes(&one), scales.clone()), (first.clone(), vec![1.0, 1.0]), "{isa:?}");
        int8::quantize_row(isa, &row, &mut two, &mut scales);
        assert_eq!(bytes(&two[..18]), first, "{isa:?}: the first bytes, then");
        assert_eq!(bytes(&two[18..]), second, "{isa:?}: the second ones");
    }
}

#[test]
fn two_byte_activations_agree_across_levels_and_beat_one_byte_on_odd_shapes() {
    for (m, k, n) in SHAPES {
        let x: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let w: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let exact = reference(&vec![0.0; m * n], &x, &w, (m, k, n), (f64::from, f64::from));
        let error = |got: &[f32]| got.iter().zip(&exact).map(|(g, e)| (f64::from(*g) - e).abs()).fold(0.0, f64::max);
        for isa in levels() {
            let run = |isa: Isa, panels: &Panels| {
                let mut got = vec![0.0f32; m * n];
                accumulate(isa, &mut got, &x, panels, 1, None);
                got
            };
            let (one, two) = (Panels::int8(isa, &w, k, n), Panels::int8(isa, &w, k, n).with_two_byte_activations());
            // The same panels in plain code: the layout of the second bytes, at this level's
            // kernel and at the plain one.
            let (got, plain) = (run(isa, &two), run(Isa::detect("scalar").expect("cap"), &two));
            let scale = exact.iter().fold(1.0f64, |a, e| a.max(e.abs()));
            let apart = got.iter().zip(&plain).map(|(a, b)| f64::from((a - b).abs())).fold(0.0, f64::max);
            assert!(apart <= 1e-5 * scale, "{isa:?} {m}x{k}x{n}: {apart} from the plain kernel");
            assert!(error(&got) <= error(&run(isa, &one)), "{isa:?} {m}x{k}x{n}: two bytes no closer than one");
        }
    }
}
