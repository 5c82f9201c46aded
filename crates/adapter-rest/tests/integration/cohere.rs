//! Cohere's `POST /v2/embed` and `/v1/embed` on the real model: every embedding type against
//! sentence-transformers' `quantize_embeddings` of the fixtures (`tests/fixtures/quantized.json`,
//! int8 and uint8 with the server's calibrated range): binary
//! and ubinary bit for bit, int8 and uint8 within one step; v1's plain floats; `input_type`
//! picking a model's prompt on the tiny XLM-RoBERTa, by name or by `input_type_prompts`.

use aki_core::vector::cosine;
use base64::Engine as _;
use serde_json::{Value, json};

use crate::families::tiny;
use crate::support::{config, floats, post, ready_app, reference};

fn quantized() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../backend-candle/tests/fixtures/quantized.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
}

fn ints(value: &Value) -> Vec<i64> {
    value.as_array().expect("array").iter().map(|x| x.as_i64().expect("integer")).collect()
}

#[tokio::test]
async fn v2_embed_gives_every_type_as_sentence_transformers_quantizes_it() {
    // f32, the reference's precision: bf16's rounding moves values near zero across it.
    let mut config = config();
    config.backend.dtype = Some("f32".into());
    let (app, _) = ready_app(config).await;
    let want = quantized();
    let texts = want["texts"].clone();
    let types = json!(["float", "int8", "uint8", "binary", "ubinary", "base64"]);
    let reply =
        post(&app, "/v2/embed", json!({"texts": texts, "input_type": "search_document", "embedding_types": types}))
            .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["response_type"], "embeddings_by_type");
    assert_eq!(reply.body["texts"], texts);
    let tokens: u64 = (0..48).map(|i| reference(i).2 as u64).sum();
    assert_eq!(reply.body["meta"]["billed_units"]["input_tokens"], tokens);
    let got = &reply.body["embeddings"];
    for i in 0..48 {
        let float = floats(&got["float"][i]);
        assert!(cosine(&float, &reference(i).1) >= 0.9999, "float {i}");
        let bytes = base64::engine::general_purpose::STANDARD.decode(got["base64"][i].as_str().expect("base64"));
        let decoded: Vec<f32> =
            bytes.expect("base64").chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        assert_eq!(decoded, float, "base64 {i}: the float vector's bytes");
        for kind in ["binary", "ubinary"] {
            assert_eq!(ints(&got[kind][i]), ints(&want[kind][i]), "{kind} {i}: bit for bit");
        }
        for kind in ["int8", "uint8"] {
            let (g, w) = (ints(&got[kind][i]), ints(&want[kind][i]));
            let worst = g.iter().zip(&w).map(|(a, b)| (a - b).abs()).max().unwrap_or(0);
            assert!(g.len() == 384 && worst <= 1, "{kind} {i}: {worst} steps off");
        }
    }
}

#[tokio::test]
async fn v1_embed_answers_plain_floats_unless_types_are_asked_and_refuses_what_it_cannot_serve() {
    let (app, _) = ready_app(config()).await;
    let (text, want, _) = reference(2);
    let plain = post(&app, "/v1/embed", json!({"texts": [text], "input_type": "search_query"})).await;
    assert_eq!(plain.status, 200, "{}", plain.text);
    assert_eq!(
        (&plain.body["response_type"], &plain.body["meta"]["api_version"]["version"]),
        (&json!("embeddings_floats"), &json!("1"))
    );
    assert!(cosine(&floats(&plain.body["embeddings"][0]), &want) >= 0.9999);
    let named = post(&app, "/v1/embed", json!({"texts": [text], "embedding_types": ["float"]})).await;
    assert_eq!(named.body["response_type"], "embeddings_by_type", "named types, even float alone: {}", named.text);
    let typed =
        post(&app, "/v1/embed", json!({"texts": [text], "embedding_types": ["ubinary"], "output_dimension": 64})).await;
    assert_eq!(typed.status, 200, "{}", typed.text);
    assert_eq!(typed.body["embeddings"]["ubinary"][0].as_array().expect("bytes").len(), 8, "64 dimensions in 8 bytes");
    assert!(typed.body["embeddings"].get("float").is_none(), "only the types asked for");
    let long = "word ".repeat(600);
    let refused =
        post(&app, "/v2/embed", json!({"texts": [long], "input_type": "search_query", "truncate": "NONE"})).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    let cut =
        post(&app, "/v2/embed", json!({"texts": [long], "input_type": "search_query", "truncate": "START"})).await;
    assert_eq!(cut.body["meta"]["billed_units"]["input_tokens"], 256, "{}", cut.text);
    let image = post(&app, "/v2/embed", json!({"texts": ["a"], "input_type": "image"})).await;
    assert_eq!(image.status, 422, "{}", image.text);
    let unknown = post(&app, "/v2/embed", json!({"texts": ["a"], "model": "embed-english-v3.0"})).await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
}

#[tokio::test]
async fn input_type_picks_the_models_prompt_of_that_kind() {
    let (config, reference) = tiny("xlm-roberta");
    let (app, _) = ready_app(config).await;
    let text = reference["inputs"][1].clone();
    for (input_type, prompt) in [("search_query", "query"), ("search_document", "passage")] {
        let reply =
            post(&app, "/v2/embed", json!({"texts": [text], "input_type": input_type, "embedding_types": ["float"]}))
                .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let want = &reference["prompted"][prompt]["vectors"][1];
        let c = cosine(&floats(&reply.body["embeddings"]["float"][0]), &floats(want));
        assert!(c >= 0.9999, "{input_type}: the `{prompt}` prompt, cosine {c}");
    }
}

#[tokio::test]
async fn input_type_prompts_choose_a_models_prompt_per_input_type_or_none() {
    let (mut config, reference) = tiny("xlm-roberta");
    let mapping = [("search_query", "passage"), ("clustering", ""), ("classification", "summary")];
    let types = mapping.iter().map(|(t, p)| ((*t).to_string(), (*p).to_string())).collect();
    config.input_type_prompts = aki_wiring::InputTypePrompts([(config.model.clone(), types)].into());
    let (app, _) = ready_app(config).await;
    let text = reference["inputs"][1].clone();
    let embed = |input_type: &'static str| {
        let app = app.clone();
        let body = json!({"texts": [text], "input_type": input_type, "embedding_types": ["float"]});
        async move { post(&app, "/v2/embed", body).await }
    };
    let expected = [
        ("search_query", &reference["prompted"]["passage"]["vectors"][1], "mapped to `passage`"),
        ("clustering", &reference["alone"][1], "mapped to no prompt"),
        ("search_document", &reference["prompted"]["passage"]["vectors"][1], "unmapped: the route's choice"),
    ];
    for (input_type, want, why) in expected {
        let reply = embed(input_type).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let c = cosine(&floats(&reply.body["embeddings"]["float"][0]), &floats(want));
        assert!(c >= 0.9999, "{input_type} {why}: cosine {c}");
    }
    let missing = embed("classification").await;
    assert_eq!(missing.status, 500, "a mapping to a prompt the model lacks is the server's fault: {}", missing.text);
    assert!(!missing.text.contains("summary"), "the client is not shown the server's settings: {}", missing.text);
}

#[tokio::test]
async fn the_native_and_openai_routes_answer_the_same_types_as_cohere() {
    let (app, _) = ready_app(config()).await;
    let texts = json!([reference(0).0, reference(1).0]);
    let types = json!(["int8", "uint8", "binary", "ubinary"]);
    let cohere =
        post(&app, "/v2/embed", json!({"texts": texts, "input_type": "search_query", "embedding_types": types})).await;
    let native = post(&app, "/api/v1/embed", json!({"texts": texts, "embedding_types": types})).await;
    assert_eq!(native.status, 200, "{}", native.text);
    assert_eq!(native.body["embeddings_by_type"], cohere.body["embeddings"]);
    assert_eq!(native.body["embeddings"].as_array().expect("floats too").len(), 2);
    for kind in ["int8", "uint8", "binary", "ubinary"] {
        let openai = post(&app, "/v1/embeddings", json!({"input": texts, "encoding_format": kind})).await;
        assert_eq!(openai.status, 200, "{kind}: {}", openai.text);
        for i in 0..2 {
            assert_eq!(openai.body["data"][i]["embedding"], cohere.body["embeddings"][kind][i], "{kind} {i}");
        }
    }
    let plain = post(&app, "/api/v1/embed", json!({"texts": texts})).await;
    assert!(plain.body.get("embeddings_by_type").is_none(), "only when asked");
}
