//! Library throughput on the real model: both corpora embedded from text (tokenization, forward
//! pass, pooling, normalisation) in batches of 1, 8, 32 and 128, repeated for a median and a
//! spread; the same measurement `scripts/peer_sentence_transformers.py` makes of the peer.
//!
//! It also measures the machine's single-precision matrix multiply rate (the `gemm` crate at
//! the shape of the model's feed-forward layer) and counts each corpus' tokens, for the
//! compute ceiling in the report, and the cosines of its vectors for the 48 reference fixtures
//! (what a lower precision costs).
//!
//! `cargo bench -p aki-benches --bench throughput -- [--quick] [--repeat N] [--threads N]
//! [--engine packed|candle] [--dtype f32|f16|bf16|int8] [--isa auto|avx2|scalar] [--corpus short|medium]
//! [--batch N[,N..]] [--json PATH]`. Under `cargo test` it is a smoke run.

use std::time::{Duration, Instant};

use aki_backend_candle::{CandleBackend, CandleConfig};
use aki_bench_report::{CorpusSize, FixtureCosine, ThroughputRow, ThroughputRun};
use aki_benches::{medium_corpus, quantile, short_corpus};
use aki_core::{EmbedOptions, RequestContext, paths};

struct Args {
    quick: bool,
    repeat: usize,
    threads: Option<usize>,
    packed: bool,
    json: Option<String>,
    corpus: Option<String>,
    batches: Option<Vec<usize>>,
    dtype: Option<String>,
    isa: String,
}

fn args() -> Args {
    let raw: Vec<String> = std::env::args().collect();
    let value = |flag: &str| raw.iter().position(|a| a == flag).and_then(|i| raw.get(i + 1)).cloned();
    // `cargo test --all-targets` runs bench targets without `--bench`: a smoke run then.
    let quick = raw.iter().any(|a| a == "--quick") || !raw.iter().any(|a| a == "--bench");
    Args {
        quick,
        repeat: value("--repeat").and_then(|v| v.parse().ok()).unwrap_or(if quick { 1 } else { 5 }),
        threads: value("--threads").and_then(|v| v.parse().ok()),
        packed: value("--engine").is_none_or(|e| e != "candle"),
        json: value("--json"),
        corpus: value("--corpus"),
        batches: value("--batch").map(|v| v.split(',').filter_map(|b| b.parse().ok()).collect()),
        dtype: value("--dtype"),
        isa: value("--isa").unwrap_or_else(|| "auto".into()),
    }
}

fn main() {
    let args = args();
    let dir = paths::installed_model_dir(paths::DEFAULT_MODEL);
    let config = CandleConfig {
        device: "cpu".into(),
        packed: args.packed,
        threads: args.threads,
        dtype: args.dtype.clone(),
        cpu_isa: args.isa.clone(),
        max_forward_batch: 128,
        ..CandleConfig::for_model(dir.to_string_lossy())
    };
    let backend =
        CandleBackend::load(&config).unwrap_or_else(|e| panic!("{e} (run `cargo xtask fetch-model`)")).into_pipeline();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let info = backend.info();
    let engine = format!("aki, {}, {}", info.engine, info.dtype);
    let cosine = runtime.block_on(fixture_cosine(&backend));
    println!("{engine}: cosine to the reference on the fixtures: min {:.6}, mean {:.6}", cosine.min, cosine.mean);
    let batches: &[usize] = if args.quick { &[1, 8, 32] } else { &[1, 8, 32, 128] };
    let mut rows = Vec::new();
    let mut corpora = std::collections::BTreeMap::new();
    println!("| corpus | batch | sentences/s (median) | min | max | one call p50 ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (corpus, mut texts) in [("short", short_corpus()), ("medium", medium_corpus())] {
        if args.corpus.as_deref().is_some_and(|c| c != corpus) {
            continue;
        }
        if args.quick {
            texts.truncate(16);
        }
        let tokens: usize = runtime
            .block_on(backend.embed(texts.clone(), EmbedOptions::default(), RequestContext::default()))
            .expect("embeds")
            .token_counts
            .iter()
            .sum();
        corpora.insert(corpus.to_string(), CorpusSize { texts: texts.len(), tokens });
        for &batch in batches.iter().filter(|&&b| args.batches.as_ref().is_none_or(|only| only.contains(&b))) {
            let run = || -> (f64, Vec<f64>) {
                let started = Instant::now();
                let mut calls = Vec::new();
                for chunk in texts.chunks(batch) {
                    let sent = Instant::now();
                    runtime
                        .block_on(backend.embed(chunk.to_vec(), EmbedOptions::default(), RequestContext::default()))
                        .expect("embeds");
                    calls.push(sent.elapsed().as_secs_f64() * 1e3);
                }
                (texts.len() as f64 / started.elapsed().as_secs_f64(), calls)
            };
            run(); // warm-up
            let (mut rates, mut calls) = (Vec::new(), Vec::new());
            for _ in 0..args.repeat {
                let (rate, c) = run();
                rates.push(rate);
                calls.extend(c);
            }
            rates.sort_by(f64::total_cmp);
            calls.sort_by(f64::total_cmp);
            let median = quantile(&rates, 0.5);
            let call_p50 = quantile(&calls, 0.5);
            println!(
                "| {corpus} | {batch} | {median:.1} | {:.1} | {:.1} | {call_p50:.2} |",
                rates[0],
                rates[rates.len() - 1]
            );
            rows.push(ThroughputRow {
                corpus: corpus.to_string(),
                batch,
                sentences_per_s: rates,
                call_p50_ms: Some(call_p50),
            });
        }
    }
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let seconds = if args.quick { 0.2 } else { 3.0 };
    let sgemm = sgemm_gflops(threads, seconds);
    let bf16 = (args.dtype.as_deref() == Some("bf16")).then(|| bf16_peak_gflops(threads, seconds)).flatten();
    if let Some(rate) = bf16 {
        println!("bf16 dot products ({threads} threads, vdpbf16ps from registers): {rate:.1} GFLOP/s");
    }
    let avx2_fma = (args.isa == "avx2").then(|| avx2_fma_peak_gflops(threads, seconds)).flatten();
    if let Some(rate) = avx2_fma {
        println!("AVX2 f32 multiply-adds ({threads} threads, vfmadd231ps from registers): {rate:.1} GFLOP/s");
    }
    println!("sgemm ({threads} threads, gemm crate): {sgemm:.1} GFLOP/s");
    if let Some(path) = args.json {
        let run = ThroughputRun {
            engine,
            versions: Default::default(),
            threads,
            sgemm_gflops: Some(sgemm),
            bf16_gflops: bf16,
            avx2_fma_gflops: avx2_fma,
            fixture_cosine: Some(cosine),
            corpora,
            rows,
        };
        let json = serde_json::to_string_pretty(&run).expect("serialisable");
        std::fs::write(&path, json + "\n").unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}

/// The cosines of `backend`'s vectors for the reference fixtures (all in one call) to theirs.
async fn fixture_cosine(backend: &aki_core::ModelPipeline) -> FixtureCosine {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../crates/backend-candle/tests/fixtures/reference.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixtures")).expect("json");
    let items = json["items"].as_array().expect("items");
    let texts = items.iter().map(|i| i["text"].as_str().expect("text").to_string()).collect();
    let vectors =
        backend.embed(texts, EmbedOptions::default(), RequestContext::default()).await.expect("embeds").vectors;
    let cosines: Vec<f64> = vectors
        .iter()
        .zip(items)
        .map(|(v, item)| {
            let want: Vec<f32> = serde_json::from_value(item["embedding"].clone()).expect("embedding");
            f64::from(aki_core::vector::cosine(v, &want))
        })
        .collect();
    FixtureCosine {
        min: cosines.iter().copied().fold(1.0, f64::min),
        mean: cosines.iter().sum::<f64>() / cosines.len() as f64,
    }
}

/// The machine's bf16 dot-product rate in GFLOP/s on `threads` threads: `vdpbf16ps` on 24
/// independent register accumulators, no memory traffic (an upper bound, as a matrix multiply
/// also moves data); `None` on a CPU without AVX-512 BF16.
fn bf16_peak_gflops(threads: usize, seconds: f64) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        if !std::arch::is_x86_feature_detected!("avx512bf16") {
            return None;
        }
        /// 24 chains of `iterations` dot products of 32 bf16 pairs; returns a value so the work
        /// is not optimised away.
        ///
        /// # Safety
        /// The CPU must have AVX-512 F and BF16.
        #[allow(unsafe_code)]
        #[target_feature(enable = "avx512f,avx512bf16")]
        unsafe fn chains(iterations: u64) -> f32 {
            use std::arch::x86_64::{
                __m512bh, __m512i, _mm512_dpbf16_ps, _mm512_reduce_add_ps, _mm512_set1_epi32, _mm512_set1_ps,
            };
            // SAFETY: register arithmetic only; both types are 512 bits of plain data.
            unsafe {
                let bh = |bits: i32| std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(bits));
                let (a, b) = (bh(0x3f80_3f80), bh(0x3c00_3c00));
                let mut acc = [_mm512_set1_ps(0.0); 24];
                for _ in 0..iterations {
                    for v in &mut acc {
                        *v = _mm512_dpbf16_ps(*v, a, b);
                    }
                }
                acc.iter().map(|v| _mm512_reduce_add_ps(*v)).sum()
            }
        }
        // SAFETY: the CPU has AVX-512 BF16 (checked above). Each vdpbf16ps: 16 lanes x 2
        // products x 2 FLOPs.
        #[allow(unsafe_code)]
        Some(register_rate(threads, seconds, |n| unsafe { chains(n) }, 24.0 * 64.0))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (threads, seconds);
        None
    }
}

/// The machine's AVX2 f32 fused multiply-add rate in GFLOP/s on `threads` threads, from 12
/// independent register accumulators: the f32 ceiling of the kernels capped at AVX2 (`gemm`
/// picks wider instructions where the CPU has them); `None` without AVX2 and FMA.
fn avx2_fma_peak_gflops(threads: usize, seconds: f64) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        if !(std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")) {
            return None;
        }
        /// 12 chains of `iterations` fused multiply-adds of 8 lanes; returns a value so the
        /// work is not optimised away.
        ///
        /// # Safety
        /// The CPU must have AVX2 and FMA.
        #[allow(unsafe_code)]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn chains(iterations: u64) -> f32 {
            use std::arch::x86_64::{_mm256_fmadd_ps, _mm256_set1_ps, _mm256_storeu_ps};
            let (a, b) = (_mm256_set1_ps(1.0001), _mm256_set1_ps(0.9999));
            let mut acc = [_mm256_set1_ps(0.0); 12];
            for _ in 0..iterations {
                for v in &mut acc {
                    *v = _mm256_fmadd_ps(a, *v, b);
                }
            }
            let mut lanes = [0.0f32; 8];
            acc.iter()
                .map(|v| {
                    // SAFETY: `lanes` holds the 8 values stored.
                    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), *v) };
                    lanes[0]
                })
                .sum()
        }
        // SAFETY: the CPU has AVX2 and FMA (checked above). Each FMA: 8 lanes x 2 FLOPs.
        #[allow(unsafe_code)]
        Some(register_rate(threads, seconds, |n| unsafe { chains(n) }, 12.0 * 16.0))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (threads, seconds);
        None
    }
}

/// GFLOP/s of `chains` (register arithmetic of `flops` per iteration) run on `threads` threads
/// at once, repeated for `seconds`.
fn register_rate(threads: usize, seconds: f64, chains: fn(u64) -> f32, flops: f64) -> f64 {
    let started = Instant::now();
    let mut iterations = 0u64;
    let per_call: u64 = 1 << 20;
    while started.elapsed().as_secs_f64() < seconds {
        let sums: Vec<_> = (0..threads).map(|_| std::thread::spawn(move || chains(per_call))).collect();
        for sum in sums {
            std::hint::black_box(sum.join().expect("thread"));
        }
        iterations += per_call;
    }
    iterations as f64 * threads as f64 * flops / started.elapsed().as_secs_f64() / 1e9
}

/// The `gemm` crate's f32 matrix multiply rate on `threads` threads, in GFLOP/s, at the shape
/// of the model's feed-forward layer for a batch of short sentences (672 x 384 times 384 x 1536).
fn sgemm_gflops(threads: usize, seconds: f64) -> f64 {
    let (m, k, n) = (672usize, 384usize, 1536usize);
    let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
    let mut c = vec![0.0f32; m * n];
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
    let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    pool.install(|| {
        let mut multiply = || {
            // SAFETY: dense row-major buffers of exactly m x k, k x n and m x n elements.
            #[allow(unsafe_code)]
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    c.as_mut_ptr(),
                    1,
                    n as isize,
                    false,
                    a.as_ptr(),
                    1,
                    k as isize,
                    b.as_ptr(),
                    1,
                    n as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    parallelism,
                );
            }
        };
        multiply();
        let (started, mut count) = (Instant::now(), 0u32);
        while started.elapsed() < Duration::from_secs_f64(seconds) {
            multiply();
            count += 1;
        }
        2.0 * (m * k * n) as f64 * f64::from(count) / started.elapsed().as_secs_f64() / 1e9
    })
}
