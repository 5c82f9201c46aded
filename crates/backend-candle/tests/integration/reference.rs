//! Correctness on the real model: every fixture alone, all in one padded batch, and the exact
//! token ids, against embeddings and ids produced by sentence-transformers.

use std::sync::{Arc, OnceLock};

use aki_backend_candle::{CandleBackend, CandleConfig};
use aki_core::{EmbedOptions, EncodeOptions, ModelPipeline, RequestContext, paths, vector::cosine};
use serde::Deserialize;

const MIN_COSINE: f32 = 0.9999;

#[derive(Deserialize)]
struct Reference {
    dim: usize,
    max_seq_length: usize,
    items: Vec<Item>,
}

#[derive(Clone, Deserialize)]
struct Item {
    kind: String,
    text: String,
    tokens: usize,
    embedding: Vec<f32>,
}

#[derive(Deserialize)]
struct TokenIds {
    items: Vec<TokenIdItem>,
}

#[derive(Deserialize)]
struct TokenIdItem {
    text: String,
    input_ids: Vec<u32>,
}

fn fixture<T: for<'de> Deserialize<'de>>(name: &str) -> T {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The real model on the packed CPU path (`packed`) or on candle-transformers, each loaded once
/// for the whole test binary. Fails (never skips) when the model is not installed.
pub(crate) fn backend(packed: bool) -> Arc<ModelPipeline> {
    static BACKENDS: [OnceLock<Arc<ModelPipeline>>; 2] = [OnceLock::new(), OnceLock::new()];
    Arc::clone(BACKENDS[usize::from(packed)].get_or_init(|| {
        let dir = paths::installed_model_dir(paths::DEFAULT_MODEL);
        assert!(
            dir.join("model.safetensors").is_file(),
            "the real model is not installed in {}: run `cargo xtask fetch-model` first",
            dir.display()
        );
        // One forward pass takes all 48 fixtures, so padding to the longest is exercised.
        let config = CandleConfig {
            max_forward_batch: 64,
            device: "cpu".into(),
            dtype: Some("f32".into()),
            packed,
            ..CandleConfig::for_model(dir.to_string_lossy())
        };
        Arc::new(CandleBackend::load(&config).expect("the real model loads").into_pipeline())
    }))
}

fn reference() -> Reference {
    let reference: Reference = fixture("reference.json");
    assert_eq!(reference.items.len(), 48, "fixture file is complete");
    reference
}

#[tokio::test]
async fn model_facts_come_from_its_files() {
    let reference = reference();
    for packed in [true, false] {
        let info = backend(packed).info().clone();
        assert_eq!(info.dimension, reference.dim);
        assert_eq!(info.max_input_tokens, reference.max_seq_length);
        assert!(info.normalize_default, "modules.json lists a Normalize module");
        assert_eq!(info.is_padded, !packed, "only the candle path pads");
    }
}

#[tokio::test]
async fn every_item_embedded_alone_matches_the_reference() {
    let mut failures = Vec::new();
    for (item, packed) in reference().items.into_iter().flat_map(|i| [(i.clone(), true), (i, false)]) {
        let backend = backend(packed);
        let out = backend
            .embed(vec![item.text.clone()], EmbedOptions::default(), RequestContext::default())
            .await
            .expect("embeds");
        let cos = cosine(&out.vectors[0], &item.embedding);
        if cos < MIN_COSINE || out.tokens() != item.tokens {
            failures.push(format!(
                "packed {packed}, {} {:?}: cosine {cos}, tokens {} (want {})",
                item.kind,
                item.text,
                out.tokens(),
                item.tokens
            ));
        }
    }
    assert!(failures.is_empty(), "items off the reference:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn all_items_in_one_batch_match_the_reference() {
    let items = reference().items;
    let texts: Vec<String> = items.iter().map(|i| i.text.clone()).collect();
    let mut failures = Vec::new();
    for packed in [true, false] {
        let out = backend(packed)
            .embed(texts.clone(), EmbedOptions::default(), RequestContext::default())
            .await
            .expect("embeds");
        assert_eq!(out.vectors.len(), items.len());
        assert_eq!(out.token_counts, items.iter().map(|i| i.tokens).collect::<Vec<_>>());
        for (item, vector) in items.iter().zip(&out.vectors) {
            let cos = cosine(vector, &item.embedding);
            let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
            if cos < MIN_COSINE || (norm - 1.0).abs() > 1e-4 {
                failures.push(format!("packed {packed}, {} {:?}: cosine {cos}, norm {norm}", item.kind, item.text));
            }
        }
    }
    assert!(failures.is_empty(), "items off the reference in a batch:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn token_ids_equal_the_reference_tokenizer() {
    let expected: TokenIds = fixture("reference_token_ids.json");
    let texts: Vec<String> = expected.items.iter().map(|i| i.text.clone()).collect();
    let encodings = backend(true).encode(texts, EncodeOptions::default()).await.expect("encodes");
    for (want, got) in expected.items.iter().zip(&encodings) {
        assert_eq!(got.ids, want.input_ids, "token ids of {:?}", want.text);
    }
}

#[tokio::test]
async fn over_long_input_without_truncation_is_a_validation_error() {
    let long = reference().items.into_iter().find(|i| i.tokens == 256).expect("a long fixture");
    let options =
        EmbedOptions { encode: EncodeOptions { truncate: false, ..Default::default() }, ..Default::default() };
    let err = backend(true).embed(vec![long.text], options, RequestContext::default()).await.expect_err("too long");
    assert_eq!(err.kind(), aki_core::ErrorKind::Validation, "{err}");
}
