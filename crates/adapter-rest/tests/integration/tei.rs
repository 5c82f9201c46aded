//! TEI's remaining routes on the real model, as TEI's clients call them: `POST /` and
//! `/invocations` by the model's task (embed, or similarity for a `source_sentence`),
//! `/similarity`, `/decode`, `/embeddings` in OpenAI's shape, `/tokenize` with a prompt, `/info`
//! with TEI's fields, and `/predict` refused on an embedder.

use aki_core::vector::cosine;
use axum::http::StatusCode;
use serde_json::json;

use crate::support::{config, floats, get, post, ready_app, reference};

#[tokio::test]
async fn the_root_route_embeds_or_compares_as_the_body_asks() {
    let (app, _) = ready_app(config()).await;
    let (text, want, _) = reference(3);
    for path in ["/", "/invocations"] {
        let embedded = post(&app, path, json!({"inputs": text, "normalize": true, "truncate": true})).await;
        assert_eq!(embedded.status, StatusCode::OK, "{path}: {}", embedded.text);
        assert_eq!(embedded.body.as_array().expect("2-D").len(), 1);
        assert!(cosine(&floats(&embedded.body[0]), &want) >= 0.9999, "{path}");
        assert!(embedded.headers.contains_key("x-compute-tokens"), "{path}: TEI's timing headers");
    }
    let sentences = ["A man is eating a piece of bread.", "A man is riding a horse.", "The weather is nice."];
    let source = "A man is eating food.";
    let vectors = post(&app, "/embed", json!({"inputs": [source, sentences[0], sentences[1], sentences[2]]})).await;
    let vectors: Vec<Vec<f32>> = vectors.body.as_array().expect("vectors").iter().map(floats).collect();
    let want: Vec<f32> = vectors[1..].iter().map(|v| cosine(&vectors[0], v)).collect();
    let body = json!({"inputs": {"source_sentence": source, "sentences": sentences}, "parameters": {}});
    for path in ["/", "/similarity"] {
        let compared = post(&app, path, body.clone()).await;
        assert_eq!(compared.status, StatusCode::OK, "{path}: {}", compared.text);
        let got = floats(&compared.body);
        assert_eq!(got.len(), 3, "{path}");
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{path}: {got:?} vs {want:?}");
        }
        assert!(got[0] > got[2], "{path}: eating bread is closer to eating food than the weather");
    }
    let none = post(&app, "/similarity", json!({"inputs": {"source_sentence": source, "sentences": []}})).await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST, "{}", none.text);
    assert_eq!(none.body["error_type"], "Empty");
    let wrong = post(&app, "/", json!({"inputs": 3})).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", wrong.text);
    assert_eq!(wrong.body["error_type"], "Validation", "TEI's error shape: {}", wrong.text);
}

#[tokio::test]
async fn decode_inverts_tokenize_and_embeddings_speaks_openai() {
    let (app, _) = ready_app(config()).await;
    let tokens = post(&app, "/tokenize", json!({"inputs": "Hello world"})).await;
    let ids: Vec<u64> = tokens.body[0].as_array().expect("tokens").iter().filter_map(|t| t["id"].as_u64()).collect();
    assert_eq!(ids, [101, 7592, 2088, 102]);
    let text = post(&app, "/decode", json!({"ids": ids})).await;
    assert_eq!(text.status, StatusCode::OK, "{}", text.text);
    assert_eq!(text.body, json!(["hello world"]));
    let kept = post(&app, "/decode", json!({"ids": [ids.clone(), ids], "skip_special_tokens": false})).await;
    assert_eq!(kept.body, json!(["[CLS] hello world [SEP]", "[CLS] hello world [SEP]"]));
    let outside = post(&app, "/decode", json!({"ids": [1_000_000]})).await;
    assert_eq!(outside.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", outside.text);

    let (sentence, want, tokens) = reference(2);
    let openai = post(&app, "/embeddings", json!({"input": sentence})).await;
    assert_eq!(openai.status, StatusCode::OK, "{}", openai.text);
    assert_eq!(openai.body["object"], "list");
    assert!(cosine(&floats(&openai.body["data"][0]["embedding"]), &want) >= 0.9999);
    assert_eq!(openai.body["usage"]["prompt_tokens"].as_u64(), Some(tokens as u64));
}

#[tokio::test]
async fn info_has_teis_fields_and_predict_needs_a_classifier() {
    let (app, _) = ready_app(config()).await;
    let info = get(&app, "/info").await.body;
    assert_eq!(info["model_type"], json!({"embedding": {"pooling": "mean"}}));
    assert_eq!(info["max_input_length"], 256);
    assert_eq!(info["served_model_name"], info["model_id"]);
    // The precision the server reports (its CPU's default: f32, f16 at AVX2, bf16 with AVX-512
    // BF16), named as PyTorch and TEI's clients name it.
    let torch = match info["dtype"].as_str().expect("dtype") {
        "f32" => "float32",
        "f16" => "float16",
        "bf16" => "bfloat16",
        other => panic!("no default precision is {other}"),
    };
    assert_eq!(info["model_dtype"], torch, "{info}");
    assert_eq!(info["max_concurrent_requests"], 512);
    assert_eq!(info["max_batch_requests"], info["max_batch_size"]);
    assert!(info["tokenization_workers"].as_u64().expect("workers") >= 1);
    for kept in ["dimension", "max_batch_tokens", "max_client_batch_size", "version"] {
        assert!(!info[kept].is_null(), "/info keeps {kept}");
    }
    let refused = post(&app, "/predict", json!({"inputs": "I like you."})).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.text);
    assert!(refused.text.contains("embedding model"), "{}", refused.text);
}
