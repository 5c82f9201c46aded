//! The shapes of the benchmark files: what the throughput bench and the peer scripts write,
//! what the load harness measures, and `docs/benchmarks.json`. Writers and the report reader
//! share these types, and unknown or missing fields are errors, so a renamed key fails loudly
//! instead of rendering as "-". What repeated figures come to (median and spread, a scenario
//! over rounds) is `summary.rs`.

mod summary;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use summary::{LoadField, Spread, load_spread, spread};

/// One engine's library throughput: ours from `benches/benches/throughput.rs`, a peer's from
/// its script under `scripts/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThroughputRun {
    /// What ran, as the report names it (`aki (packed, f32)`, `sentence-transformers`).
    pub engine: String,
    /// Versions of what ran (`torch`, `sentence-transformers`, `onnxruntime`), from the run.
    #[serde(default)]
    pub versions: BTreeMap<String, String>,
    /// Compute threads.
    pub threads: usize,
    /// The matrix multiply rate the engine's library reached in the same run, GFLOP/s.
    #[serde(default)]
    pub sgemm_gflops: Option<f64>,
    /// The machine's bf16 dot-product rate (`vdpbf16ps`), GFLOP/s, when the run was in bf16.
    #[serde(default)]
    pub bf16_gflops: Option<f64>,
    /// The machine's AVX2 f32 multiply-add rate (`vfmadd231ps` from registers), GFLOP/s, when
    /// the run was capped at AVX2: the ceiling of the kernels there.
    #[serde(default)]
    pub avx2_fma_gflops: Option<f64>,
    /// Size of each corpus the run embedded (ours only: counted with the model's tokenizer).
    #[serde(default)]
    pub corpora: BTreeMap<String, CorpusSize>,
    /// Its vectors' cosine to the reference fixtures, when the run measured it.
    #[serde(default)]
    pub fixture_cosine: Option<FixtureCosine>,
    /// One row per corpus and batch size.
    pub rows: Vec<ThroughputRow>,
}

/// How close a run's vectors of the 48 reference fixtures came to the reference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureCosine {
    /// The worst fixture's cosine.
    pub min: f64,
    /// The mean over the fixtures.
    pub mean: f64,
}

impl ThroughputRun {
    /// The row for `corpus` at `batch`.
    pub fn row(&self, corpus: &str, batch: usize) -> Option<&ThroughputRow> {
        self.rows.iter().find(|r| r.corpus == corpus && r.batch == batch)
    }
}

/// How big a corpus is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorpusSize {
    /// Texts in it.
    pub texts: usize,
    /// Their tokens, special tokens included.
    pub tokens: usize,
}

/// Sentences/s for one corpus at one batch size, every repeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThroughputRow {
    /// `short` or `medium`.
    pub corpus: String,
    /// Texts per call.
    pub batch: usize,
    /// Sentences per second of each repeat.
    pub sentences_per_s: Vec<f64>,
    /// Median duration of one call, milliseconds (tokenization included).
    #[serde(default)]
    pub call_p50_ms: Option<f64>,
}

/// Padding waste of one batching setting on the padded path (the `padding` bench).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaddingRow {
    /// `batching.max_batch_tokens`.
    pub max_batch_tokens: usize,
    /// `batching.min_fill_percent`.
    pub min_fill_percent: usize,
    /// Share of the computed tokens that were padding (0 to 1).
    pub padding_share: f64,
    /// Model calls made.
    pub batches: usize,
    /// Mean texts per call.
    pub texts_per_batch: f64,
    /// Texts embedded per second.
    pub sentences_per_s: f64,
}

/// What one wrk load scenario measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadOutcome {
    /// Scenario name (`short-100`).
    pub scenario: String,
    /// Concurrent connections.
    pub connections: u32,
    /// Duration.
    pub seconds: u32,
    /// Offered requests/s when paced; `None` when as fast as answered.
    pub offered_rate: Option<u32>,
    /// Completed requests per second.
    pub requests_per_s: f64,
    /// Latency percentiles, milliseconds.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Answers with a status outside 2xx.
    pub non_2xx: u64,
    /// Connect, read, write errors and timeouts.
    pub socket_errors: u64,
    /// The server's peak resident memory, MiB.
    pub peak_rss_mib: f64,
    /// The server's CPU time over wall time.
    pub cpu_cores: f64,
}

/// What the mixed scenario of `cargo xtask load` measured: query clients (one short text per
/// request) and bulk clients (many medium passages per request), each kind alone and together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixedOutcome {
    /// Clients sending one short text per request, back to back.
    pub query_clients: usize,
    /// Clients sending `passages_per_request` passages per request, back to back.
    pub bulk_clients: usize,
    /// Passages in one bulk request.
    pub passages_per_request: usize,
    /// Seconds each phase sent new requests.
    pub seconds: u64,
    /// Query latency with no bulk client, milliseconds.
    pub query_p50_alone_ms: f64,
    /// 99th percentile of the same.
    pub query_p99_alone_ms: f64,
    /// Query latency while bulk clients ran, milliseconds.
    pub query_p50_with_bulk_ms: f64,
    /// 99th percentile of the same.
    pub query_p99_with_bulk_ms: f64,
    /// The slowest query answered while bulk clients ran, milliseconds.
    pub query_max_with_bulk_ms: f64,
    /// Queries answered with no bulk client.
    pub queries_alone: u64,
    /// Queries answered while bulk clients ran.
    pub queries_with_bulk: u64,
    /// Passages answered per second with no query client.
    pub bulk_passages_per_s_alone: f64,
    /// Passages answered per second alongside the query clients.
    pub bulk_passages_per_s_with_queries: f64,
    /// Bulk requests sent in both phases with bulk clients.
    pub bulk_requests: u64,
    /// Queries not answered 200 (429 included).
    pub failed_queries: u64,
    /// Bulk requests not answered 200 (429 included).
    pub failed_bulk: u64,
    /// Tokens the server computed and then discarded, from its metrics; `None` when it does
    /// not report them.
    pub wasted_tokens: Option<u64>,
}

/// One criterion benchmark's median with its confidence interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CriterionResult {
    /// `group/function/parameter`.
    pub id: String,
    /// Median time per iteration, nanoseconds.
    pub median_ns: f64,
    /// Lower bound of the 95% interval.
    pub ci_low_ns: f64,
    /// Upper bound of the 95% interval.
    pub ci_high_ns: f64,
    /// Elements per iteration, when the benchmark declared a throughput.
    pub elements: Option<u64>,
}

/// Where the numbers came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    /// CPU model name.
    pub cpu: String,
    /// Instruction-set extensions that matter to the kernels (`avx512f`, `avx512_bf16`, `amx_tile`).
    pub isa: Vec<String>,
    /// Cores the process may use.
    pub cores: usize,
    /// Memory, GiB.
    pub memory_gib: f64,
    /// `uname -sr`.
    pub kernel: String,
    /// `rustc --version`.
    pub rustc: String,
    /// Short commit hash, with a note when the tree had local changes.
    pub commit: String,
    /// When the run started (UTC).
    pub date: String,
}

/// `docs/benchmarks.json`: everything one `cargo xtask bench` run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// The machine.
    pub machine: Machine,
    /// A smoke run (`--quick`).
    pub quick: bool,
    /// Repeats of each measurement.
    pub repeat: usize,
    /// Our library throughput runs by name (`packed`, `packed_one_thread`, `candle`).
    pub throughput: BTreeMap<String, ThroughputRun>,
    /// Peers' throughput runs by name (`sentence-transformers`), measured in the same run.
    pub peers: BTreeMap<String, ThroughputRun>,
    /// Each round of load scenarios.
    pub load_rounds: Vec<Vec<LoadOutcome>>,
    /// Each round's mixed scenario (bulk indexing alongside queries).
    #[serde(default)]
    pub mixed_rounds: Vec<MixedOutcome>,
    /// Padding waste on the padded path under each batching setting.
    pub padding: Vec<PaddingRow>,
    /// Criterion results.
    pub criterion: Vec<CriterionResult>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_file_in_the_scripts_shape_reads_and_a_renamed_key_is_an_error() {
        let peer = r#"{"engine": "sentence-transformers", "versions": {"torch": "2.15.0"}, "threads": 2,
            "sgemm_gflops": 158.0, "rows": [{"corpus": "short", "batch": 32, "sentences_per_s": [170.0, 174.0]}]}"#;
        let run: ThroughputRun = serde_json::from_str(peer).expect("reads");
        assert_eq!(run.row("short", 32).map(|r| r.sentences_per_s.len()), Some(2));
        assert_eq!(run.versions["torch"], "2.15.0");
        let renamed = peer.replace("sentences_per_s", "sentences_per_second");
        let err = serde_json::from_str::<ThroughputRun>(&renamed).expect_err("renamed key");
        assert!(err.to_string().contains("sentences_per_second"), "{err}");
    }
}
