//! Unit tests of the backend on tiny random models the tests write themselves.

use aki_core::{
    EmbedError, EmbedOptions, EmbeddingProvider, EncodeOptions, Encoding, ErrorKind, ModelPipeline, Pooling,
    RequestContext, TruncationDirection, encoding, vector::cosine,
};
use tempfile::TempDir;

use crate::tiny::{self, HIDDEN, MAX_TOKENS};
use crate::{CandleBackend, CandleConfig};

fn model(pooling: Pooling) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    tiny::write(dir.path(), pooling);
    dir
}

/// The tiny model on the CPU in f32 (the tests compare paths at f32 tolerances).
fn config_of(dir: &TempDir) -> CandleConfig {
    CandleConfig {
        device: "cpu".into(),
        dtype: Some("f32".into()),
        ..CandleConfig::for_model(dir.path().to_string_lossy())
    }
}

/// The tiny model's pipeline, the backend unbatched and uncached as its inference side.
fn load(dir: &TempDir) -> ModelPipeline {
    loaded(config_of(dir))
}

fn loaded(config: CandleConfig) -> ModelPipeline {
    CandleBackend::load(&config).expect("tiny model loads").into_pipeline()
}

fn texts(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_string()).collect()
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

const LONG: &str = "the quick brown fox jumps over the lazy dog , a man is eating food . hello world ! the dog";

#[tokio::test]
async fn reads_model_facts_from_the_files() {
    let dir = model(Pooling::Cls);
    let info = load(&dir).info().clone();
    assert_eq!(info.dimension, HIDDEN);
    assert_eq!(info.max_input_tokens, MAX_TOKENS);
    assert_eq!(info.pooling, Pooling::Cls);
    assert!(info.normalize_default);
    assert_eq!((info.device.as_str(), info.dtype.as_str()), ("cpu", "f32"));
}

#[tokio::test]
async fn one_unit_vector_per_text_in_order_with_token_usage() {
    let dir = model(Pooling::Mean);
    let backend = load(&dir);
    let out = backend
        .embed(texts(&["hello world", "the dog", ""]), EmbedOptions::default(), RequestContext::default())
        .await
        .expect("embeds");
    assert_eq!(out.vectors.len(), 3);
    // [CLS] hello world [SEP] + [CLS] the dog [SEP] + [CLS] [SEP]
    assert_eq!(out.token_counts, vec![4, 4, 2]);
    for v in &out.vectors {
        assert_eq!(v.len(), HIDDEN);
        assert!((norm(v) - 1.0).abs() < 1e-5);
    }
    let alone =
        backend.embed(texts(&["the dog"]), EmbedOptions::default(), RequestContext::default()).await.expect("embeds");
    assert!(cosine(&alone.vectors[0], &out.vectors[1]) > 0.99999);
    assert!(cosine(&out.vectors[0], &out.vectors[1]) < 0.9999, "different texts, different vectors");
}

#[tokio::test]
async fn padding_does_not_change_a_sentence_vector() {
    for pooling in [Pooling::Mean, Pooling::Max, Pooling::Cls] {
        let dir = model(pooling);
        let backend = load(&dir);
        let raw = EmbedOptions { normalize: Some(false), ..Default::default() };
        let alone = backend.embed(texts(&["a man"]), raw, RequestContext::default()).await.expect("alone");
        let padded = backend.embed(texts(&["a man", LONG]), raw, RequestContext::default()).await.expect("padded");
        let (a, b) = (&alone.vectors[0], &padded.vectors[0]);
        let max_diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(max_diff < 1e-4, "{pooling:?}: padding moved the vector by {max_diff}");
    }
}

#[tokio::test]
async fn the_packed_path_agrees_with_candle_transformers() {
    let batch = texts(&["a man", LONG, "", "hello world !"]);
    for pooling in [Pooling::Mean, Pooling::Max, Pooling::Cls] {
        for act in ["gelu", "geluapproximate", "relu"] {
            let dir = model(pooling);
            let path = dir.path().join("config.json");
            let mut config: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).expect("config")).expect("json");
            config["hidden_act"] = act.into();
            std::fs::write(&path, config.to_string()).expect("write config");
            let packed = load(&dir);
            let candle = loaded(CandleConfig { packed: false, ..config_of(&dir) });
            assert!(!packed.info().is_padded && candle.info().is_padded);
            let raw = EmbedOptions { normalize: Some(false), ..Default::default() };
            let want = candle.embed(batch.clone(), raw, RequestContext::default()).await.expect("candle");
            let got = packed.embed(batch.clone(), raw, RequestContext::default()).await.expect("packed");
            for (g, w) in got.vectors.iter().zip(&want.vectors) {
                let max_diff = g.iter().zip(w).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
                assert!(max_diff < 1e-4, "{pooling:?} {act}: packed differs by {max_diff}");
            }
        }
    }
}

#[tokio::test]
async fn normalize_and_dimensions_follow_the_request() {
    let dir = model(Pooling::Mean);
    let backend = load(&dir);
    let raw = backend
        .embed(
            texts(&["hello"]),
            EmbedOptions { normalize: Some(false), ..Default::default() },
            RequestContext::default(),
        )
        .await
        .expect("raw");
    assert!((norm(&raw.vectors[0]) - 1.0).abs() > 1e-3, "mean of unit-free token vectors is not unit length");
    let unit =
        backend.embed(texts(&["hello"]), EmbedOptions::default(), RequestContext::default()).await.expect("unit");
    assert!(cosine(&raw.vectors[0], &unit.vectors[0]) > 0.99999);
    let short = backend
        .embed(texts(&["hello"]), EmbedOptions { dimensions: Some(8), ..Default::default() }, RequestContext::default())
        .await
        .expect("matryoshka");
    assert_eq!(short.vectors[0].len(), 8);
    assert!((norm(&short.vectors[0]) - 1.0).abs() < 1e-5);
    assert!(cosine(&short.vectors[0], &raw.vectors[0][..8]) > 0.99999, "the first 8 values, renormalised");
    let too_many = EmbedOptions { dimensions: Some(HIDDEN + 1), ..Default::default() };
    assert_eq!(
        backend.embed(texts(&["hello"]), too_many, RequestContext::default()).await.expect_err("too many").kind(),
        ErrorKind::Validation
    );
}

#[tokio::test]
async fn truncation_overrides_the_tokenizer_file_and_follows_the_request() {
    let dir = model(Pooling::Mean);
    let backend = load(&dir);
    let short = backend.encode(texts(&["hello"]), EncodeOptions::default()).await.expect("encodes");
    assert_eq!(short[0].ids, vec![2, 21, 3], "no fixed-length padding from tokenizer.json");

    let right = backend.encode(texts(&[LONG]), EncodeOptions::default()).await.expect("encodes");
    assert_eq!(right[0].len(), MAX_TOKENS, "truncated at max_seq_length, not the file's 8");
    assert_eq!(right[0].ids[..3], [2, 5, 6], "keeps the start: [CLS] the quick");
    assert_eq!(right[0].ids.last(), Some(&3), "still ends in [SEP]");

    let left = EncodeOptions { truncate: true, direction: TruncationDirection::Left };
    let left = backend.encode(texts(&[LONG]), left).await.expect("encodes");
    assert_eq!(left[0].len(), MAX_TOKENS);
    assert_eq!(left[0].ids[left[0].len() - 3..], [5, 12, 3], "keeps the end: the dog [SEP]");
    assert_eq!(left[0].ids[0], 2, "still starts with [CLS]");

    let strict = EmbedOptions { encode: EncodeOptions { truncate: false, ..Default::default() }, ..Default::default() };
    let err = backend.embed(texts(&["hello", LONG]), strict, RequestContext::default()).await.expect_err("too long");
    assert!(matches!(&err, EmbedError::Validation(m) if m.contains("input 1")), "{err}");
}

#[tokio::test]
async fn bad_encodings_are_validation_errors_not_panics() {
    let dir = model(Pooling::Mean);
    let backend = load(&dir);
    let enc = |ids: Vec<u32>| Encoding { type_ids: vec![0; ids.len()], ids };
    // Checked once, before inference, by the pipeline's one check.
    let strict = EncodeOptions { truncate: false, ..EncodeOptions::default() };
    for (batch, what) in [
        (vec![enc(vec![2, 999, 3])], "outside the vocabulary"),
        (vec![enc(vec![])], "1 to"),
        (vec![enc(vec![5; MAX_TOKENS + 1])], "1 to"),
        (vec![Encoding { ids: vec![2, 3], type_ids: vec![0] }], "differ in length"),
    ] {
        let err = encoding::prepare(batch, strict, backend.info()).expect_err(what);
        assert!(matches!(&err, EmbedError::Validation(m) if m.contains(what)), "{err}");
    }
    let inference = backend.inference();
    assert!(inference.embed(Vec::new(), RequestContext::default()).await.expect("empty batch").vectors.is_empty());
    backend.warm_up().await.expect("still healthy after bad input");
}

#[tokio::test]
async fn half_precision_stays_finite_and_close_to_f32() {
    let dir = model(Pooling::Mean);
    let f32_backend = load(&dir);
    let batch = texts(&["a man", LONG]);
    let reference =
        f32_backend.embed(batch.clone(), EmbedOptions::default(), RequestContext::default()).await.expect("f32");
    // The packed path's f16 or bf16 weights, and candle-transformers' half-precision tensors.
    for (dtype, packed) in [("f16", true), ("f16", false), ("bf16", true), ("bf16", false)] {
        let backend = loaded(CandleConfig { dtype: Some(dtype.into()), packed, ..config_of(&dir) });
        assert_eq!((backend.info().dtype.as_str(), backend.info().is_padded), (dtype, !packed));
        let out = backend.embed(batch.clone(), EmbedOptions::default(), RequestContext::default()).await.expect(dtype);
        for (got, want) in out.vectors.iter().zip(&reference.vectors) {
            assert!(got.iter().all(|x| x.is_finite()), "{dtype} {packed}: NaN or inf with a padding mask");
            assert!(cosine(got, want) > 0.99, "{dtype} {packed}: cosine {}", cosine(got, want));
        }
    }
}

fn load_err(dir: &TempDir) -> String {
    match CandleBackend::load(&config_of(dir)) {
        Ok(_) => panic!("a broken model loaded"),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Unavailable);
            assert!(matches!(e, EmbedError::Load(_)), "{e}");
            e.to_string()
        }
    }
}

#[test]
fn missing_files_are_load_errors_naming_the_file() {
    for file in ["model.safetensors", "tokenizer.json", "config.json"] {
        let dir = model(Pooling::Mean);
        std::fs::remove_file(dir.path().join(file)).expect("remove");
        let err = load_err(&dir);
        assert!(err.contains(file), "{file}: {err}");
    }
}

#[test]
fn corrupt_or_truncated_weights_are_load_errors() {
    let dir = model(Pooling::Mean);
    let weights = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&weights).expect("read");
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).expect("truncate");
    assert!(load_err(&dir).contains("model.safetensors"));
    std::fs::write(&weights, b"this is not a safetensors file at all").expect("corrupt");
    assert!(load_err(&dir).contains("model.safetensors"));
}

#[test]
fn unknown_architecture_and_bad_tokenizer_are_load_errors() {
    let dir = model(Pooling::Mean);
    let path = dir.path().join("config.json");
    let config = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, config.replace("\"bert\"", "\"gpt2\"").replace("BertModel", "GPT2Model")).expect("write");
    assert!(load_err(&dir).contains("unsupported architecture"));

    let dir = model(Pooling::Mean);
    std::fs::write(dir.path().join("tokenizer.json"), "{\"not\": \"a tokenizer\"}").expect("write");
    assert!(load_err(&dir).contains("tokenizer.json"));
}

#[test]
fn ambiguous_pooling_is_a_load_error() {
    let dir = model(Pooling::Mean);
    let path = dir.path().join("1_Pooling/config.json");
    std::fs::write(&path, r#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": true}"#).expect("write");
    assert!(load_err(&dir).contains("pooling"));
}

#[tokio::test]
async fn tokenize_reports_ids_texts_special_flags_and_byte_offsets() {
    let dir = model(Pooling::Mean);
    let backend = load(&dir);
    let with = backend.tokenize(texts(&["Hello worlds"]), true).await.expect("tokenizes");
    let shown: Vec<(u32, &str, bool, usize, usize)> =
        with[0].iter().map(|t| (t.id, t.text.as_str(), t.special, t.start, t.stop)).collect();
    assert_eq!(
        shown,
        vec![
            (2, "[CLS]", true, 0, 0),
            (21, "hello", false, 0, 5),
            (22, "world", false, 6, 11),
            (25, "##s", false, 11, 12),
            (3, "[SEP]", true, 0, 0)
        ]
    );
    let without = backend.tokenize(texts(&["Hello worlds"]), false).await.expect("tokenizes");
    assert_eq!(without[0].len(), 3);
    assert!(without[0].iter().all(|t| !t.special));
}

#[tokio::test]
async fn weight_bytes_count_what_each_path_holds() {
    let dir = model(Pooling::Mean);
    let candle = CandleBackend::load(&CandleConfig { packed: false, ..config_of(&dir) }).expect("loads").weight_bytes();
    let half = CandleConfig { dtype: Some("f16".into()), packed: false, ..config_of(&dir) };
    let half = CandleBackend::load(&half).expect("loads");
    let packed = CandleBackend::load(&CandleConfig { dtype: Some("f32".into()), ..config_of(&dir) })
        .expect("loads")
        .weight_bytes();
    let bf16 = CandleBackend::load(&CandleConfig { dtype: Some("bf16".into()), ..config_of(&dir) }).expect("loads");
    let file = std::fs::metadata(dir.path().join("model.safetensors")).expect("file").len();
    assert!(candle <= file && candle > file * 9 / 10, "f32 tensors as stored: {candle} of a {file}-byte file");
    assert_eq!(half.weight_bytes(), candle / 2, "f16 holds half");
    // One copy, though this tiny model's narrow layers are padded to 64 columns (the real
    // model's are not: the integration tests weigh it).
    assert!(packed > candle * 9 / 10 && packed < 2 * candle, "the packed path keeps one copy: {packed} vs {candle}");
    assert!(!bf16.info().is_padded && bf16.info().dtype == "bf16", "bf16 on the CPU is the packed path");
    let bf16 = bf16.weight_bytes();
    // Half the bytes per weight, though this tiny model's narrow layers are padded to 64 columns.
    assert!(bf16 < packed * 9 / 10, "bf16 linear weights take less: {bf16} vs {packed}");
    let f16 = CandleBackend::load(&CandleConfig { dtype: Some("f16".into()), ..config_of(&dir) }).expect("loads");
    assert!(!f16.info().is_padded && f16.info().dtype == "f16", "f16 on the CPU is the packed path");
    assert_eq!(f16.weight_bytes(), bf16, "f16 weights take as many bytes as bf16");
}

mod properties {
    use std::sync::OnceLock;

    use proptest::prelude::*;

    use super::*;

    /// The tiny model on both paths, loaded once for every case.
    fn both() -> &'static (TempDir, CandleBackend, CandleBackend) {
        static BOTH: OnceLock<(TempDir, CandleBackend, CandleBackend)> = OnceLock::new();
        BOTH.get_or_init(|| {
            let dir = model(Pooling::Mean);
            let packed = CandleBackend::load(&config_of(&dir)).expect("loads");
            let candle = CandleBackend::load(&CandleConfig { packed: false, ..config_of(&dir) }).expect("loads");
            (dir, packed, candle)
        })
    }

    fn batches() -> impl Strategy<Value = Vec<Encoding>> {
        let vocab = u32::try_from(tiny::VOCAB).expect("small vocabulary");
        let one = (prop::collection::vec(0..vocab, 1..=MAX_TOKENS), prop::collection::vec(0u32..2, MAX_TOKENS))
            .prop_map(|(ids, kinds)| Encoding { type_ids: kinds[..ids.len()].to_vec(), ids });
        prop::collection::vec(one, 1..=8)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Any batch shape (1 to 8 sequences of 1 to 16 tokens, any ids and segment ids, so few
        /// and many rows, full and edge panels) gives the same vectors on the packed path as on
        /// candle-transformers' padded one.
        #[test]
        fn the_packed_path_matches_candle_on_random_shapes(batch in batches()) {
            let (_, packed, candle) = both();
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            let ctx = RequestContext::default();
            let got = runtime.block_on(packed.embed(batch.clone(), ctx.clone())).expect("packed");
            let want = runtime.block_on(candle.embed(batch, ctx)).expect("candle");
            for (g, w) in got.vectors.iter().zip(&want.vectors) {
                let max_diff = g.iter().zip(w).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
                prop_assert!(max_diff < 1e-4, "packed differs by {}", max_diff);
            }
        }
    }
}
