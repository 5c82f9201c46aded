//! The linear layers' matrix multiply, `out += x · W`, over one copy of the weights laid out for
//! streaming: `W` `(k, n)` cut into panels of 64 columns, each panel contiguous, in f32 or in
//! bf16. A register tile of rows x 64 columns runs along `k` through one panel; few rows (one
//! sentence) spread the panels over the threads, many rows spread row chunks.
//!
//! f32 products use fused multiply-adds (AVX-512, AVX2 or plain code). bf16 weights take half the
//! bytes; the activations are rounded to bf16 at the multiply's input and AVX-512 BF16's
//! `vdpbf16ps` multiplies pairs along `k` into f32 (twice the f32 FMA's work per instruction),
//! or plain code does the same arithmetic. In bf16 `k` is rounded up to even and rows `2i` and
//! `2i + 1` are interleaved column by column, the pairs `vdpbf16ps` takes.

use half::bf16;
use rayon::prelude::*;

use super::gemm::{View, matmul_strided};
use super::isa::{Isa, Level, for_each_level};
use super::kernels::{Activation, activate};

/// Columns of a panel: four 512-bit registers of 16 f32 lanes.
const COLS: usize = 64;
/// Rows of a register tile: 6 x 4 accumulators, 4 weight registers and a broadcast.
pub const ROWS: usize = 6;
/// Tiles of rows one task takes at most.
pub const CHUNK_TILES: usize = 8;
/// Beyond this many rows, f32 products on AVX-512 go through `gemm`.
const GEMM_ROWS: usize = 32;
/// Weight rows ahead of the current one that the f32 tile kernel prefetches.
const PREFETCH: usize = 64;
/// Steps ahead of the current one that the bf16 tile kernel prefetches: 8 KiB of its panel
/// (one short sentence, interleaved calls: about 3% faster than 16 KiB, 8% faster than none).
const PREFETCH_BF16: usize = 32;

/// The values of the panels.
enum Values {
    F32(Vec<f32>),
    /// Pairs of bf16 bits, row `2i` in the low half.
    Bf16(Vec<u32>),
}

/// A `(k, n)` weight matrix in panels of 64 columns (`n` padded with zero columns).
pub struct Panels {
    values: Values,
    k: usize,
    n: usize,
    /// Steps along `k` of one panel: `k` in f32, `k / 2` rounded up in bf16.
    steps: usize,
}

impl Panels {
    /// `w`, `(k, n)` row-major, in f32: kept row-major (rows padded with zeros to whole panels)
    /// so `gemm` reads it as it is, and a panel is 64 columns of it, rows a full row apart.
    pub fn f32(w: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(w.len(), k * n, "matrix size differs");
        let ld = n.next_multiple_of(COLS);
        let mut data = vec![0.0f32; k * ld];
        for (row, values) in data.chunks_exact_mut(ld).zip(w.chunks_exact(n)) {
            row[..n].copy_from_slice(values);
        }
        Self { values: Values::F32(data), k, n, steps: k }
    }

    /// Panel `p`'s steps `s0..s0 + steps` as the tiles read them, with the distance between
    /// steps: a slice of the row-major f32 matrix, or of a contiguous bf16 panel.
    fn weights(&self, p: usize, s0: usize, steps: usize) -> (Weights<'_>, usize) {
        match &self.values {
            Values::F32(data) => {
                let ld = self.n.next_multiple_of(COLS);
                (Weights::F32(&data[s0 * ld + p * COLS..][..(steps - 1) * ld + COLS]), ld)
            }
            Values::Bf16(data) => (Weights::Bf16(&data[(p * self.steps + s0) * COLS..][..steps * COLS]), COLS),
        }
    }

    /// `w`, `(k, n)` row-major, rounded to bf16 (to nearest, ties to even) in pair panels.
    pub fn bf16(w: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(w.len(), k * n, "matrix size differs");
        let (panels, steps) = (n.div_ceil(COLS), k.div_ceil(2));
        let bits = |v: f32| u32::from(bf16::from_f32(v).to_bits());
        let mut data = vec![0u32; panels * steps * COLS];
        for (p, panel) in data.chunks_exact_mut(steps * COLS).enumerate() {
            let (c0, width) = (p * COLS, COLS.min(n - p * COLS));
            for (i, row) in panel.chunks_exact_mut(COLS).enumerate() {
                for (c, pair) in row[..width].iter_mut().enumerate() {
                    let low = bits(w[2 * i * n + c0 + c]);
                    let high = if 2 * i + 1 < k { bits(w[(2 * i + 1) * n + c0 + c]) } else { 0 };
                    *pair = low | (high << 16);
                }
            }
        }
        Self { values: Values::Bf16(data), k, n, steps }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        match &self.values {
            Values::F32(v) => v.len() * 4,
            Values::Bf16(v) => v.len() * 4,
        }
    }
}

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
    if let (Values::F32(values), Level::Avx512, true) = (&w.values, isa.level(), m > GEMM_ROWS) {
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
        Values::F32(_) => {
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
    };
    let (panels, tiles) = (n.div_ceil(COLS), rows / ROWS);
    let split = Split::new(tiles, panels, threads);
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

/// How one product is cut into tasks: `chunks` row chunks of `chunk_tiles` tiles each (the last
/// may be shorter), and each chunk's panels in `groups` runs.
#[derive(Debug, PartialEq)]
struct Split {
    chunks: usize,
    chunk_tiles: usize,
    groups: usize,
}

impl Split {
    /// Row chunks as [`row_chunks`] cuts them; when there are fewer than two per thread, the
    /// panels are split as well (which costs no extra weight traffic, unlike smaller row
    /// chunks), so every thread has work even for one sentence.
    fn new(tiles: usize, panels: usize, threads: usize) -> Self {
        let (chunks, chunk_tiles) = row_chunks(tiles, threads);
        let groups = if threads > 1 && chunks < 2 * threads { (2 * threads).div_ceil(chunks).min(panels) } else { 1 };
        Self { chunks, chunk_tiles, groups: groups.max(1) }
    }
}

/// `tiles` tiles of rows cut into chunks of at most [`CHUNK_TILES`] tiles, as even as whole
/// tiles allow and a multiple of the threads where there are at least two per thread: the
/// number of chunks and the tiles of each (the last may have fewer).
pub fn row_chunks(tiles: usize, threads: usize) -> (usize, usize) {
    let mut chunks = tiles.div_ceil(CHUNK_TILES).max(1);
    if threads > 1 && chunks >= 2 * threads {
        chunks = chunks.next_multiple_of(threads).min(tiles);
    }
    let chunk_tiles = tiles.div_ceil(chunks).max(1);
    (tiles.div_ceil(chunk_tiles).max(1), chunk_tiles)
}

/// Calls a tile kernel with its first `rows` rows (1 to [`ROWS`]) as the const parameter `R`.
#[cfg(target_arch = "x86_64")]
macro_rules! by_rows {
    ($rows:expr, $kernel:ident($($arg:expr),*)) => {
        match $rows {
            1 => $kernel::<1>($($arg),*),
            2 => $kernel::<2>($($arg),*),
            3 => $kernel::<3>($($arg),*),
            4 => $kernel::<4>($($arg),*),
            5 => $kernel::<5>($($arg),*),
            _ => $kernel::<ROWS>($($arg),*),
        }
    };
}

/// A slice of a panel.
enum Weights<'a> {
    F32(&'a [f32]),
    Bf16(&'a [u32]),
}

/// The activations, padded to whole tiles.
enum Input {
    F32(Vec<f32>),
    Bf16(Vec<u32>),
}

/// Panels `run` for the rows of `out` (`ld` apart; the run's columns start at `c0`),
/// activation rows from `first`. The rows' accumulators live in blocks of whole tiles; `k` is
/// walked in slices of [`K_BLOCK`] steps, each slice of each panel used by every tile while it
/// is in the L1 cache, so the weights come from memory once however many rows there are.
#[allow(clippy::too_many_arguments)]
fn panels_strided(
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
        let steps = K_BLOCK.min(w.steps - s0);
        for (t, tile) in acc[j * tiles..][..tiles].iter_mut().enumerate() {
            let rows = (count - t * ROWS).min(ROWS);
            run_tile(isa, tile, rows, input, first + t * ROWS, w, p, s0, steps);
        }
    };
    match w.values {
        // Row-major f32: all the run's panels at each step, so the weights read are stretches
        // of whole rows.
        Values::F32(_) => {
            for s0 in (0..w.steps).step_by(K_BLOCK) {
                for (j, p) in run.clone().enumerate() {
                    block(j, p, s0);
                }
            }
        }
        // bf16 panels: one panel after another, each read front to back, where the kernel's
        // prefetches run ahead (into the next panel at the end of one).
        Values::Bf16(_) => {
            for (j, p) in run.clone().enumerate() {
                for s0 in (0..w.steps).step_by(K_BLOCK) {
                    block(j, p, s0);
                }
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

/// Steps of a panel every tile takes in turn: 64 rows of 64 f32 or bf16 pairs, 16 KiB.
const K_BLOCK: usize = 64;

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
    match (w.weights(p, s0, steps), input) {
        ((Weights::F32(panel), ld), Input::F32(x)) => {
            let x = &x[r0 * stride + s0..][..(ROWS - 1) * stride + steps];
            #[cfg(target_arch = "x86_64")]
            match isa.level() {
                // SAFETY: the level is one the CPU has (`Isa::detect`); the slices above hold
                // ROWS rows of `steps` activations `stride` apart and `steps` rows of 64 weights
                // `ld` apart, all the kernel reads.
                Level::Avx512 => {
                    #[allow(unsafe_code)]
                    unsafe {
                        by_rows!(rows, tile_f32_avx512(tile, x, stride, panel, ld, steps));
                    }
                    return;
                }
                // SAFETY: as above.
                Level::Avx2 => {
                    #[allow(unsafe_code)]
                    unsafe {
                        by_rows!(rows, tile_f32_avx2(tile, x, stride, panel, ld, steps));
                    }
                    return;
                }
                Level::Scalar => {}
            }
            tile_f32_portable(isa, tile, rows, x, stride, panel, ld, steps);
        }
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
        _ => unreachable!("the activations are prepared for the weights' type"),
    }
}

for_each_level! {
/// A tile in plain Rust: `tile[r][c] += Σ x[r][s] · panel[s][c]`.
#[allow(clippy::too_many_arguments)]
fn tile_f32_portable(tile: &mut [f32; ROWS * COLS], rows: usize, x: &[f32], stride: usize, panel: &[f32], ld: usize, steps: usize) {
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
/// [`tile_bf16_avx512`]'s arithmetic in plain Rust: the same bf16 inputs, products summed in f32.
fn tile_bf16_portable(tile: &mut [f32; ROWS * COLS], rows: usize, x: &[u32], stride: usize, panel: &[u32], steps: usize) {
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

/// `R` x 64 (`R <= ROWS`) in f32 with AVX-512: up to 24 accumulators; per step four weight
/// loads, `R` broadcasts and `4R` fused multiply-adds.
///
/// # Safety
/// The CPU must have AVX-512F; `x` holds ROWS rows of `steps` values `stride` apart and `panel`
/// `steps` rows of 64 values `ld` apart.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f")]
unsafe fn tile_f32_avx512<const R: usize>(
    tile: &mut [f32; ROWS * COLS],
    x: &[f32],
    stride: usize,
    panel: &[f32],
    ld: usize,
    steps: usize,
) {
    use std::arch::x86_64::{
        __m512, _MM_HINT_T0, _mm_prefetch, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_storeu_ps,
    };
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
            let ahead = w_ptr.wrapping_add((s + PREFETCH) * ld);
            for line in 0..4 {
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line * 16).cast());
            }
            let ws: [__m512; V] = std::array::from_fn(|j| _mm512_loadu_ps(ws_ptr.add(j * 16)));
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

/// `R` x 64 in f32 with AVX2 and FMA, 16 columns at a time: up to 12 accumulators; per step two
/// weight loads, `R` broadcasts and `2R` fused multiply-adds.
///
/// # Safety
/// The CPU must have AVX2 and FMA; sizes as for [`tile_f32_avx512`].
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_f32_avx2<const R: usize>(
    tile: &mut [f32; ROWS * COLS],
    x: &[f32],
    stride: usize,
    panel: &[f32],
    ld: usize,
    steps: usize,
) {
    use std::arch::x86_64::{__m256, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_set1_ps, _mm256_storeu_ps};
    let (tile_ptr, w_ptr, x_ptr) = (tile.as_mut_ptr(), panel.as_ptr(), x.as_ptr());
    // SAFETY (whole body): offsets stay within the sizes the caller guarantees.
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
                let ws = [_mm256_loadu_ps(ws_ptr), _mm256_loadu_ps(ws_ptr.add(8))];
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
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn tile_bf16_avx512<const R: usize>(
    tile: &mut [f32; ROWS * COLS],
    x: &[u32],
    stride: usize,
    panel: &[u32],
    steps: usize,
) {
    use std::arch::x86_64::{
        __m512, __m512bh, __m512i, _MM_HINT_T0, _mm_prefetch, _mm512_dpbf16_ps, _mm512_loadu_ps, _mm512_loadu_si512,
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

/// `vcvtne2ps2bf16`: 32 f32 to 32 bf16 (to nearest, ties to even) per step.
///
/// # Safety
/// The CPU must have AVX-512 F and BF16; `row.len()` is a multiple of 32 and `dst` holds half.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn convert_avx512_bf16(row: &[f32], dst: &mut [u32]) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn levels() -> Vec<Isa> {
        ["auto", "avx2", "scalar"].iter().map(|c| Isa::detect(c).expect("cap")).collect()
    }

    /// `out + x · w` in f64, with `round` applied to every input first.
    fn reference(
        out: &[f32],
        x: &[f32],
        w: &[f32],
        (m, k, n): (usize, usize, usize),
        round: fn(f32) -> f64,
    ) -> Vec<f64> {
        (0..m * n)
            .map(|i| {
                let (r, c) = (i / n, i % n);
                f64::from(out[i]) + (0..k).map(|j| round(x[r * k + j]) * round(w[j * n + c])).sum::<f64>()
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

    fn check(panels: fn(&[f32], usize, usize) -> Panels, round: fn(f32) -> f64, tolerance: f64) {
        for (m, k, n) in SHAPES {
            let x: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let w: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
            let start: Vec<f32> = (0..m * n).map(|i| i as f32 * 0.01).collect();
            let want = reference(&start, &x, &w, (m, k, n), round);
            let packed = panels(&w, k, n);
            for isa in levels() {
                for (threads, then) in [(1, None), (2, None), (1, Some(Activation::Relu)), (2, Some(Activation::Relu))]
                {
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
    }

    #[test]
    fn f32_panels_match_the_product_at_every_level_and_edge() {
        check(Panels::f32, f64::from, 1e-5);
    }

    #[test]
    fn bf16_panels_match_the_rounded_product_at_every_level_and_edge() {
        check(Panels::bf16, |v| f64::from(bf16::from_f32(v).to_f32()), 1e-4);
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
    fn every_thread_gets_work_from_one_sentence_to_a_large_batch() {
        // One sentence of 21 tokens: four tiles, the panels of a (384, 384) product in four runs.
        assert_eq!(Split::new(4, 6, 2), Split { chunks: 1, chunk_tiles: 4, groups: 4 });
        // Eight sentences: 28 tiles in four even row chunks, two per thread.
        assert_eq!(Split::new(28, 24, 2), Split { chunks: 4, chunk_tiles: 7, groups: 1 });
        // Three chunks: too few for two per thread, so the panels split too.
        assert_eq!(Split::new(20, 6, 2), Split { chunks: 3, chunk_tiles: 7, groups: 2 });
        // A large batch: chunks of at most eight tiles, a multiple of the threads.
        assert_eq!(Split::new(112, 6, 2), Split { chunks: 14, chunk_tiles: 8, groups: 1 });
        assert_eq!(Split::new(50, 6, 2), Split { chunks: 8, chunk_tiles: 7, groups: 1 });
        // One thread: rows only, nothing to spread.
        assert_eq!(Split::new(4, 6, 1), Split { chunks: 1, chunk_tiles: 4, groups: 1 });
    }

    #[test]
    fn bf16_weights_take_half_the_bytes() {
        let (f32, bf16) =
            (Panels::f32(&vec![1.0; 384 * 1536], 384, 1536), Panels::bf16(&vec![1.0; 384 * 1536], 384, 1536));
        assert_eq!((f32.bytes(), bf16.bytes()), (384 * 1536 * 4, 384 * 1536 * 2));
    }
}
