//! TEI's routes on the model kinds beyond embedders and rerankers, on the tiny models of
//! `aki-backend-candle`'s tests against their references: a SPLADE model (`/embed_sparse`, and
//! `POST /`), a classifier of three labels (`/predict`, and `POST /`), and token vectors
//! (`/embed_all`), each refused with TEI's error shape where the model cannot serve it.

use aki_core::vector::cosine;
use serde_json::{Value, json};

use crate::families::tiny;
use crate::support::{floats, get, post, ready_app};

fn inputs(reference: &Value) -> Vec<String> {
    reference["inputs"].as_array().expect("inputs").iter().map(|t| t.as_str().expect("text").to_string()).collect()
}

#[tokio::test]
async fn a_splade_model_answers_embed_sparse_and_the_root_route_like_sparse_encoder() {
    let (config, reference) = tiny("bert-splade");
    let (app, _) = ready_app(config).await;
    let texts = inputs(&reference);
    for path in ["/embed_sparse", "/"] {
        let reply = post(&app, path, json!({"inputs": texts, "truncate": true})).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
        assert!(reply.headers.contains_key("x-compute-tokens"), "{path}: TEI's timing headers");
        for (i, (got, want)) in reply
            .body
            .as_array()
            .expect("one list per input")
            .iter()
            .zip(reference["sparse"].as_array().expect("sparse"))
            .enumerate()
        {
            let got = got.as_array().expect("pairs");
            let want = want.as_array().expect("pairs");
            assert_eq!(got.len(), want.len(), "{path} input {i}: active entries");
            for (g, w) in got.iter().zip(want) {
                assert_eq!(g["index"], w[0], "{path} input {i}");
                let (g, w) = (g["value"].as_f64().expect("value"), w[1].as_f64().expect("value"));
                assert!((g - w).abs() <= 1e-4, "{path} input {i}: {g} vs {w}");
            }
        }
    }
    let info = get(&app, "/info").await.body;
    assert_eq!(
        (&info["pooling"], &info["model_type"]),
        (&json!("splade"), &json!({"embedding": {"pooling": "splade"}}))
    );
    let all = post(&app, "/embed_all", json!({"inputs": "a"})).await;
    assert_eq!(all.status, 422, "{}", all.text);
    assert!(all.body["error"].as_str().expect("TEI's error shape").contains("SPLADE"), "{}", all.text);
}

#[tokio::test]
async fn a_classifier_of_three_labels_answers_predict_and_the_root_route_like_transformers() {
    let (config, reference) = tiny("xlm-roberta-classifier");
    let (app, _) = ready_app(config).await;
    let texts = inputs(&reference);
    let labels: Vec<&str> =
        reference["labels"].as_array().expect("labels").iter().map(|l| l.as_str().expect("label")).collect();
    let softmax = |logits: &Value| {
        let logits: Vec<f64> = logits.as_array().expect("logits").iter().map(|l| l.as_f64().expect("logit")).collect();
        let sum: f64 = logits.iter().map(|l| l.exp()).sum();
        logits.iter().map(|l| l.exp() / sum).collect::<Vec<f64>>()
    };
    let check = |what: &str, got: &Value, want: &[f64]| {
        let got = got.as_array().expect("every label");
        assert_eq!(got.len(), 3, "{what}");
        for pair in got.windows(2) {
            assert!(pair[0]["score"].as_f64() >= pair[1]["score"].as_f64(), "{what}: best first");
        }
        for entry in got {
            let i = labels.iter().position(|l| entry["label"] == *l).expect("a label of id2label");
            let score = entry["score"].as_f64().expect("score");
            assert!((score - want[i]).abs() <= 1e-4, "{what}: {} {score} vs {}", labels[i], want[i]);
        }
    };
    for path in ["/predict", "/"] {
        let one = post(&app, path, json!({"inputs": texts[1], "truncate": true})).await;
        assert_eq!(one.status, 200, "{path}: {}", one.text);
        check(&format!("{path} one text"), &one.body, &softmax(&reference["logits"][1]));
    }
    let pairs: Vec<Value> = texts.iter().map(|t| json!([reference["query"], t])).collect();
    let batch = post(&app, "/predict", json!({"inputs": pairs, "truncate": true})).await;
    assert_eq!(batch.status, 200, "{}", batch.text);
    for (i, got) in batch.body.as_array().expect("one list per pair").iter().enumerate() {
        check(&format!("pair {i}"), got, &softmax(&reference["pair_logits"][i]));
    }
    let raw = post(&app, "/predict", json!({"inputs": texts[2], "raw_scores": true, "truncate": true})).await;
    let want: Vec<f64> =
        reference["logits"][2].as_array().expect("logits").iter().map(|l| l.as_f64().expect("logit")).collect();
    check("raw scores", &raw.body, &want);
    let info = get(&app, "/info").await.body;
    assert_eq!(info["model_type"]["classifier"]["id2label"], json!({"0": labels[0], "1": labels[1], "2": labels[2]}));
    let sparse = post(&app, "/embed_sparse", json!({"inputs": "a"})).await;
    assert_eq!(sparse.status, 422, "{}", sparse.text);
}

#[tokio::test]
async fn embed_all_returns_every_tokens_vector_and_embed_sparse_needs_splade() {
    let (config, reference) = tiny("xlm-roberta");
    let (app, _) = ready_app(config).await;
    let want = reference["token_vectors"].as_array().expect("token vectors");
    let texts = &inputs(&reference)[..want.len()];
    let reply = post(&app, "/embed_all", json!({"inputs": texts, "truncate": true})).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    for (i, (got, want)) in reply.body.as_array().expect("3-D").iter().zip(want).enumerate() {
        let (got, want) = (got.as_array().expect("tokens"), want.as_array().expect("tokens"));
        assert_eq!(got.len(), want.len(), "input {i}: one vector per token");
        for (g, w) in got.iter().zip(want) {
            let c = cosine(&floats(g), &floats(w));
            assert!(c >= 0.9999, "input {i}: cosine {c}");
        }
    }
    let sparse = post(&app, "/embed_sparse", json!({"inputs": "a"})).await;
    assert_eq!(sparse.status, 422, "{}", sparse.text);
    assert!(
        sparse.body["error"].as_str().expect("TEI's error shape").contains("not a SPLADE model"),
        "{}",
        sparse.text
    );
}
