//! Every model family besides BERT, and a cross-encoder, on tiny random models that
//! `scripts/make_tiny_models.py` wrote with transformers together with what sentence-transformers
//! answers for them (`tests/tiny/*/reference.json`): each input alone and all in one batch, with
//! each named prompt, on every engine that runs the family.

use aki_backend_candle::{CandleBackend, CandleConfig};
use aki_core::{EmbedOptions, EncodeOptions, ModelPipeline, ModelTask, Pooling, RequestContext, vector::cosine};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

const MIN_COSINE: f32 = 0.9999;
const MAX_SCORE_ERROR: f32 = 1e-4;

#[derive(Deserialize)]
pub(crate) struct Reference {
    pub(crate) inputs: Vec<String>,
    max_seq_length: usize,
    #[serde(default)]
    alone: Vec<Vec<f32>>,
    #[serde(default)]
    pub(crate) tokens: Vec<usize>,
    #[serde(default)]
    prompted: BTreeMap<String, Prompted>,
    /// The token vectors of the first inputs, per token.
    #[serde(default)]
    token_vectors: Vec<Vec<Vec<f32>>>,
    pub(crate) query: Option<String>,
    #[serde(default)]
    raw_scores: Vec<f32>,
    #[serde(default)]
    scores: Vec<f32>,
}

#[derive(Deserialize)]
struct Prompted {
    vectors: Vec<Vec<f32>>,
    tokens: Vec<usize>,
}

pub(crate) fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tiny").join(name)
}

pub(crate) fn reference(name: &str) -> Reference {
    let path = dir(name).join("reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub(crate) fn load(name: &str, packed: bool) -> ModelPipeline {
    let dir = dir(name);
    let config = CandleConfig {
        device: "cpu".into(),
        dtype: Some("f32".into()),
        packed,
        ..CandleConfig::for_model(dir.to_str().expect("utf-8 path"))
    };
    CandleBackend::load(&config).unwrap_or_else(|e| panic!("{name}: {e}")).into_pipeline()
}

/// Refuses a reference whose vectors are so alike that a wrong forward pass could match it.
fn assert_discriminating(name: &str, vectors: &[Vec<f32>]) {
    let mut sum = 0.0;
    let mut pairs = 0;
    for (i, a) in vectors.iter().enumerate() {
        for b in &vectors[i + 1..] {
            sum += cosine(a, b);
            pairs += 1;
        }
    }
    assert!(sum / (pairs as f32) < 0.9, "{name}: the reference vectors are too alike to test anything");
}

fn assert_close(what: &str, got: &[Vec<f32>], want: &[Vec<f32>], inputs: &[String]) {
    assert_eq!(got.len(), want.len(), "{what}");
    for ((g, w), text) in got.iter().zip(want).zip(inputs) {
        let c = cosine(g, w);
        assert!(c >= MIN_COSINE, "{what}: cosine {c} for {text:?}");
    }
}

async fn check_embedder(name: &str, packed: bool, architecture: &str, pooling: Pooling) {
    let reference = reference(name);
    assert!(reference.inputs.len() >= 20, "{name}: at least 20 inputs");
    assert_discriminating(name, &reference.alone);
    let backend = load(name, packed);
    let info = backend.info();
    assert_eq!((info.architecture.as_str(), info.pooling, info.task), (architecture, pooling, ModelTask::Embed));
    assert_eq!(info.max_input_tokens, reference.max_seq_length, "{name}");
    let context = RequestContext::default();
    let options = EmbedOptions { normalize: Some(false), ..EmbedOptions::default() };

    let batched = backend.embed(reference.inputs.clone(), options, context.clone()).await.expect("batched");
    assert_close(&format!("{name} batched (packed {packed})"), &batched.vectors, &reference.alone, &reference.inputs);
    assert_eq!(batched.token_counts, reference.tokens, "{name}: tokens per input");
    for (i, text) in reference.inputs.iter().enumerate() {
        let alone = backend.embed(vec![text.clone()], options, context.clone()).await.expect("alone");
        assert_close(&format!("{name} alone"), &alone.vectors, &reference.alone[i..=i], &reference.inputs[i..=i]);
    }

    for (prompt_name, want) in &reference.prompted {
        let prompt = info.prompts.resolve(None, Some(prompt_name)).expect("named prompt").unwrap_or_default();
        let texts = reference.inputs.iter().map(|t| format!("{prompt}{t}")).collect();
        let got = backend.embed(texts, options, context.clone()).await.expect("prompted");
        assert_close(&format!("{name} prompt {prompt_name}"), &got.vectors, &want.vectors, &reference.inputs);
        assert_eq!(got.token_counts, want.tokens, "{name}: tokens with prompt {prompt_name}");
    }

    let first = reference.inputs[..reference.token_vectors.len()].to_vec();
    assert!(first.len() >= 3, "{name}: token vectors of at least 3 inputs");
    let prepared = backend.prepare_texts(first.clone(), &options).await.expect("prepared");
    let tokens = backend.token_vectors_prepared(prepared, context.clone()).await.expect("token vectors");
    assert_eq!(tokens.token_counts, reference.tokens[..first.len()], "{name}: tokens per input");
    for ((got, want), text) in tokens.vectors.iter().zip(&reference.token_vectors).zip(&first) {
        assert_eq!(got.len(), want.len(), "{name}: one vector per token of {text:?}");
        let what = format!("{name} token vectors of {text:?} (packed {packed})");
        assert_close(&what, got, want, &vec![text.clone(); want.len()]);
    }
}

#[tokio::test]
async fn xlm_roberta_matches_sentence_transformers_on_both_engines() {
    for packed in [true, false] {
        check_embedder("xlm-roberta", packed, "xlm-roberta", Pooling::Mean).await;
    }
    assert!(load("xlm-roberta", true).info().engine.starts_with("packed"), "XLM-RoBERTa runs on the packed path");
}

#[tokio::test]
async fn modernbert_matches_sentence_transformers() {
    check_embedder("modernbert", true, "modernbert", Pooling::Cls).await;
    let backend = load("modernbert", true);
    assert_eq!(backend.info().engine, "candle-transformers");
    assert_eq!(backend.info().prompts.default_name.as_deref(), Some("search_document"));
}

#[tokio::test]
async fn qwen3_with_last_token_pooling_matches_sentence_transformers() {
    check_embedder("qwen3", true, "qwen3", Pooling::LastToken).await;
}

#[tokio::test]
async fn bert_and_xlm_roberta_cross_encoders_score_like_sentence_transformers_on_both_engines() {
    for packed in [true, false] {
        check_reranker("bert-reranker", "bert", packed).await;
        check_reranker("xlm-roberta-reranker", "xlm-roberta", packed).await;
    }
}

async fn check_reranker(name: &str, architecture: &str, packed: bool) {
    let reference = reference(name);
    let query = reference.query.clone().expect("query");
    let backend = load(name, packed);
    assert_eq!(backend.info().architecture, architecture);
    let engine = if packed { "packed" } else { "candle-transformers" };
    assert!(backend.info().engine.starts_with(engine), "{name}: {}", backend.info().engine);
    let name = &format!("{name} ({engine})");
    assert_eq!((backend.info().task, backend.info().dimension), (ModelTask::Rerank, 1));
    let spread = reference.raw_scores.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b))
        - reference.raw_scores.iter().fold(f32::INFINITY, |a, &b| a.min(b));
    assert!(spread > 1.0, "{name}: the reference scores are too alike to test anything");
    let context = RequestContext::default();
    let options = EncodeOptions::default();
    let batched =
        backend.score_pairs(query.clone(), reference.inputs.clone(), options, context.clone()).await.expect("scores");
    for (i, (got, (raw, sigmoid))) in
        batched.logits.iter().zip(reference.raw_scores.iter().zip(&reference.scores)).enumerate()
    {
        assert!((got[0] - raw).abs() <= MAX_SCORE_ERROR, "{name} input {i}: {} vs {raw}", got[0]);
        let squashed = 1.0 / (1.0 + (-got[0]).exp());
        assert!((squashed - sigmoid).abs() <= MAX_SCORE_ERROR, "{name} input {i}: {squashed} vs {sigmoid}");
    }
    for (i, text) in reference.inputs.iter().enumerate() {
        let alone =
            backend.score_pairs(query.clone(), vec![text.clone()], options, context.clone()).await.expect("alone");
        assert!((alone.logits[0][0] - reference.raw_scores[i]).abs() <= MAX_SCORE_ERROR, "{name} input {i} alone");
    }
    let refused =
        backend.embed(vec!["x".into()], EmbedOptions::default(), context.clone()).await.expect_err("not an embedder");
    assert!(refused.to_string().contains("reranker"), "{refused}");
}

#[tokio::test]
async fn an_embedder_refuses_to_rerank() {
    let backend = load("xlm-roberta", true);
    let err = backend
        .score_pairs("q".into(), vec!["t".into()], EncodeOptions::default(), RequestContext::default())
        .await
        .expect_err("not a reranker");
    assert!(err.to_string().contains("cannot rerank"), "{err}");
}

#[test]
fn an_unsupported_architecture_fails_naming_it_and_the_supported_ones() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for file in ["tokenizer.json", "model.safetensors"] {
        std::fs::copy(dir("xlm-roberta").join(file), tmp.path().join(file)).expect("copy");
    }
    let config = r#"{"model_type": "t5", "architectures": ["T5EncoderModel"], "hidden_size": 8, "vocab_size": 10}"#;
    std::fs::write(tmp.path().join("config.json"), config).expect("write");
    let err =
        CandleBackend::load(&CandleConfig::for_model(tmp.path().to_str().expect("utf-8"))).err().expect("unsupported");
    let text = err.to_string();
    assert!(text.contains("t5") && text.contains("T5EncoderModel") && text.contains("modernbert, qwen3"), "{text}");
}

#[tokio::test]
async fn xlm_roberta_in_bf16_on_the_packed_path_stays_close() {
    // The default on CPUs with AVX-512 BF16 (plain code elsewhere): the same gate as the real
    // model's worst fixture (0.999).
    let reference = reference("xlm-roberta");
    let dir = dir("xlm-roberta");
    let config = CandleConfig {
        device: "cpu".into(),
        dtype: Some("bf16".into()),
        ..CandleConfig::for_model(dir.to_str().expect("utf-8 path"))
    };
    let backend = CandleBackend::load(&config).expect("bf16").into_pipeline();
    assert!(backend.info().engine.starts_with("packed"));
    let options = EmbedOptions { normalize: Some(false), ..EmbedOptions::default() };
    let got = backend.embed(reference.inputs.clone(), options, RequestContext::default()).await.expect("bf16");
    let worst = got.vectors.iter().zip(&reference.alone).map(|(g, w)| cosine(g, w)).fold(1.0f32, f32::min);
    assert!(worst >= 0.999, "bf16 worst cosine {worst}");
}

#[test]
fn int8_runs_on_the_packed_path_only_and_says_so() {
    let config = |name: &str, packed: bool| CandleConfig {
        device: "cpu".into(),
        dtype: Some("int8".into()),
        packed,
        ..CandleConfig::for_model(dir(name).to_str().expect("utf-8 path"))
    };
    let backend = CandleBackend::load(&config("xlm-roberta", true)).expect("int8 on the packed path");
    assert_eq!(backend.info().dtype, "int8");
    for (name, packed, why) in [("modernbert", true, "modernbert"), ("xlm-roberta", false, "backend.packed is false")] {
        let error = CandleBackend::load(&config(name, packed)).err().expect("int8 off the packed path").to_string();
        assert!(error.contains("int8") && error.contains(why), "{name}: {error}");
    }
}
