//! Sequence classifiers of several labels and a SPLADE model on tiny random models, against
//! what transformers (`AutoModelForSequenceClassification`) and sentence-transformers
//! (`SparseEncoder`) answer for them, on both engines.

use aki_core::{ClassifierInput, EmbedOptions, EncodeOptions, ModelTask, Pooling, RequestContext};
use serde::Deserialize;

use crate::families::{load, reference};

const MAX_ERROR: f32 = 1e-4;

#[derive(Deserialize)]
struct Classifier {
    labels: Vec<String>,
    logits: Vec<Vec<f32>>,
    pair_logits: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
struct Splade {
    vocab_size: usize,
    sparse: Vec<Vec<(usize, f32)>>,
}

fn extra<T: for<'de> Deserialize<'de>>(name: &str) -> T {
    let path = crate::families::dir(name).join("reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn assert_logits(what: &str, got: &[Vec<f32>], want: &[Vec<f32>]) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "{what} input {i}: labels");
        let error = g.iter().zip(w).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(error <= MAX_ERROR, "{what} input {i}: {g:?} vs {w:?}");
    }
}

async fn check_classifier(name: &str, packed: bool) {
    let (inputs, query) = {
        let r = reference(name);
        (r.inputs, r.query.expect("query"))
    };
    let want: Classifier = extra(name);
    let backend = load(name, packed);
    let info = backend.info();
    let what = format!("{name} (packed {packed})");
    assert_eq!((info.task, info.dimension, &info.labels), (ModelTask::Rerank, want.labels.len(), &want.labels));
    assert!(!info.is_reranker(), "{what}: several labels make a classifier");
    assert_eq!(info.engine.starts_with("packed"), packed, "{what}: {}", info.engine);
    let (options, context) = (EncodeOptions::default(), RequestContext::default());

    let singles = inputs.iter().cloned().map(ClassifierInput::Single).collect();
    let prepared = backend.prepare_classifier_inputs(singles, options).await.expect("singles");
    let got = backend.score_prepared(prepared, context.clone()).await.expect("scores");
    assert_logits(&format!("{what} singles"), &got.logits, &want.logits);

    // Pairs and singles mixed in one request, each answered in its place.
    let mixed: Vec<ClassifierInput> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if i % 2 == 0 {
                ClassifierInput::Pair(query.clone(), t.clone())
            } else {
                ClassifierInput::Single(t.clone())
            }
        })
        .collect();
    let prepared = backend.prepare_classifier_inputs(mixed, options).await.expect("mixed");
    let got = backend.score_prepared(prepared, context).await.expect("scores");
    let expected: Vec<Vec<f32>> = (0..inputs.len())
        .map(|i| if i % 2 == 0 { want.pair_logits[i].clone() } else { want.logits[i].clone() })
        .collect();
    assert_logits(&format!("{what} pairs and singles"), &got.logits, &expected);
}

#[tokio::test]
async fn classifiers_of_two_and_three_labels_match_transformers_on_both_engines() {
    for packed in [true, false] {
        check_classifier("bert-classifier", packed).await;
        check_classifier("xlm-roberta-classifier", packed).await;
    }
}

#[tokio::test]
async fn splade_matches_sparse_encoder_on_both_engines() {
    let r = reference("bert-splade");
    let want: Splade = extra("bert-splade");
    for packed in [true, false] {
        let backend = load("bert-splade", packed);
        let info = backend.info().clone();
        let what = format!("bert-splade (packed {packed})");
        assert_eq!((info.pooling, info.dimension, info.normalize_default), (Pooling::Splade, want.vocab_size, false));
        assert!(info.is_splade() && info.engine.starts_with("packed") == packed, "{what}: {}", info.engine);
        let options = EmbedOptions { normalize: Some(false), ..EmbedOptions::default() };
        let context = RequestContext::default();
        let batched = backend.embed(r.inputs.clone(), options, context.clone()).await.expect("batched");
        assert_eq!(batched.token_counts, r.tokens, "{what}: tokens per input");
        for (i, text) in r.inputs.iter().enumerate() {
            let alone = backend.embed(vec![text.clone()], options, context.clone()).await.expect("alone");
            for (how, vector) in [("batched", &batched.vectors[i]), ("alone", &alone.vectors[0])] {
                let got = aki_core::vector::sparse(vector);
                let indices = |v: &[(usize, f32)]| v.iter().map(|(i, _)| *i).collect::<Vec<_>>();
                assert_eq!(indices(&got), indices(&want.sparse[i]), "{what} {how}: active entries of {text:?}");
                let error = got.iter().zip(&want.sparse[i]).map(|(a, b)| (a.1 - b.1).abs()).fold(0.0f32, f32::max);
                assert!(error <= MAX_ERROR, "{what} {how}: {text:?} off by {error}");
            }
        }
        let prepared = backend.prepare_texts(vec!["x".into()], &options).await.expect("prepared");
        let refused = backend.token_vectors_prepared(prepared, context).await.expect_err("no token vectors");
        assert!(refused.to_string().contains("SPLADE"), "{refused}");
    }
}

#[test]
fn splade_variants_the_backend_does_not_run_are_refused_naming_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let source = crate::families::dir("bert-splade");
    for file in ["config.json", "tokenizer.json", "model.safetensors", "modules.json"] {
        std::fs::copy(source.join(file), tmp.path().join(file)).expect("copy");
    }
    std::fs::create_dir(tmp.path().join("1_SpladePooling")).expect("mkdir");
    let pooling = r#"{"pooling_strategy": "sum", "activation_function": "relu"}"#;
    std::fs::write(tmp.path().join("1_SpladePooling/config.json"), pooling).expect("write");
    let config = aki_backend_candle::CandleConfig::for_model(tmp.path().to_str().expect("utf-8"));
    let err = aki_backend_candle::CandleBackend::load(&config).err().expect("sum pooling is refused");
    assert!(err.to_string().contains("sum pooling of relu is not supported"), "{err}");
}
