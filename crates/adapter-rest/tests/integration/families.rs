//! The other model families and a cross-encoder through the REST routes: the tiny models of
//! `aki-backend-candle`'s tests against their sentence-transformers references, with prompts on
//! the native and TEI routes, TEI's `/rerank` and the Cohere/Jina `/v1/rerank` and `/v2/rerank`.

use aki_core::vector::cosine;
use aki_wiring::AppConfig;
use serde_json::{Value, json};

use crate::support::{floats, get, post, ready_app};

pub(crate) fn tiny(name: &str) -> (AppConfig, Value) {
    let dir = format!("{}/../backend-candle/tests/tiny/{name}", env!("CARGO_MANIFEST_DIR"));
    let reference = std::fs::read_to_string(format!("{dir}/reference.json")).expect("reference");
    let mut config = AppConfig { model: dir, ..AppConfig::default() };
    config.backend.device = "cpu".into();
    config.backend.dtype = Some("f32".into());
    (config, serde_json::from_str(&reference).expect("json"))
}

fn close(got: &Value, want: &Value) {
    let c = cosine(&floats(got), &floats(want));
    assert!(c >= 0.9999, "cosine {c}");
}

#[tokio::test]
async fn each_family_embeds_with_its_prompts_on_the_native_and_tei_routes() {
    for (name, architecture, engine) in
        [("xlm-roberta", "xlm-roberta", "packed"), ("modernbert", "modernbert", "candle"), ("qwen3", "qwen3", "candle")]
    {
        let (config, reference) = tiny(name);
        let (app, _engine) = ready_app(config).await;
        let info = get(&app, "/info").await.body;
        assert_eq!((info["architecture"].as_str(), info["task"].as_str()), (Some(architecture), Some("embed")));
        assert!(info["engine"].as_str().expect("engine").starts_with(engine), "{name}: {info}");
        let inputs = &reference["inputs"];
        let (prompt_name, prompted) = reference["prompted"].as_object().expect("prompts").iter().next().expect("one");
        assert!(info["prompts"][prompt_name].is_string(), "{name}: /info lists its prompts");

        let native = post(&app, "/api/v1/embed", json!({"texts": inputs, "prompt_name": prompt_name})).await;
        assert_eq!(native.status, 200, "{name}: {}", native.text);
        let want_tokens: u64 = prompted["tokens"].as_array().expect("tokens").iter().filter_map(Value::as_u64).sum();
        assert_eq!(native.body["usage"]["tokens"].as_u64(), Some(want_tokens), "{name}: the prompt counts");
        for (got, want) in native.body["embeddings"]
            .as_array()
            .expect("vectors")
            .iter()
            .zip(prompted["vectors"].as_array().expect("vectors"))
        {
            close(got, want);
        }
        let tei =
            post(&app, "/embed", json!({"inputs": inputs[0], "prompt_name": prompt_name, "truncate": true})).await;
        assert_eq!(tei.status, 200, "{name}: {}", tei.text);
        close(&tei.body[0], &prompted["vectors"][0]);

        // Without a prompt the model's default applies (ModernBERT's tiny model has one).
        let plain = post(&app, "/api/v1/embed", json!({"texts": [inputs[1]]})).await;
        let default = info["default_prompt_name"].as_str();
        let want = default.map_or(&reference["alone"][1], |d| &reference["prompted"][d]["vectors"][1]);
        close(&plain.body["embeddings"][0], want);

        let unknown = post(&app, "/api/v1/embed", json!({"texts": ["a"], "prompt_name": "nope"})).await;
        assert_eq!(unknown.status, 422, "{name}: {}", unknown.text);
        assert!(unknown.text.contains(prompt_name.as_str()), "{name}: the error lists the prompts: {}", unknown.text);
    }
}

#[tokio::test]
async fn the_cross_encoder_answers_tei_rerank_and_cohere_rerank() {
    let (config, reference) = tiny("bert-reranker");
    let (app, _engine) = ready_app(config).await;
    let texts: Vec<&str> =
        reference["inputs"].as_array().expect("inputs").iter().filter_map(Value::as_str).take(6).collect();
    let scores = floats(&reference["scores"]);
    let raw_scores = floats(&reference["raw_scores"]);
    let query = &reference["query"];

    let tei =
        post(&app, "/rerank", json!({"query": query, "texts": texts, "return_text": true, "truncate": true})).await;
    assert_eq!(tei.status, 200, "{}", tei.text);
    let ranks = tei.body.as_array().expect("ranks");
    assert_eq!(ranks.len(), texts.len());
    let mut previous = f64::INFINITY;
    for rank in ranks {
        let (index, score) = (rank["index"].as_u64().expect("index") as usize, rank["score"].as_f64().expect("score"));
        assert!(score <= previous, "best first");
        previous = score;
        assert!((score as f32 - scores[index]).abs() < 1e-4, "text {index}: {score} vs {}", scores[index]);
        assert_eq!(rank["text"].as_str(), Some(texts[index]));
    }
    let raw =
        post(&app, "/rerank", json!({"query": query, "texts": texts, "raw_scores": true, "truncate": true})).await;
    let best = &raw.body[0];
    let index = best["index"].as_u64().expect("index") as usize;
    assert!((best["score"].as_f64().expect("score") as f32 - raw_scores[index]).abs() < 1e-4);
    assert!(best.get("text").is_none(), "no text unless asked");
    assert!(raw.headers.contains_key("x-compute-tokens"));

    let documents: Vec<Value> =
        texts.iter().enumerate().map(|(i, t)| if i % 2 == 0 { json!(t) } else { json!({"text": t}) }).collect();
    let cohere =
        post(&app, "/v1/rerank", json!({"query": query, "documents": documents, "top_n": 2, "return_documents": true}))
            .await;
    assert_eq!(cohere.status, 200, "{}", cohere.text);
    let results = cohere.body["results"].as_array().expect("results");
    assert_eq!(results.len(), 2, "top_n");
    assert_eq!(results[0]["index"], ranks[0]["index"]);
    assert!(
        (results[0]["relevance_score"].as_f64().expect("score") - ranks[0]["score"].as_f64().expect("score")).abs()
            < 1e-6
    );
    assert_eq!(results[0]["document"]["text"], ranks[0]["text"]);
    assert!(cohere.body["usage"]["total_tokens"].as_u64().expect("tokens") > 0);

    let v2 = post(&app, "/v2/rerank", json!({"query": query, "documents": texts, "top_n": 1})).await;
    assert_eq!(v2.status, 200, "{}", v2.text);
    assert_eq!(v2.body["results"][0]["index"], ranks[0]["index"]);
    assert!(v2.body["results"][0].get("document").is_none());

    // TEI's predict on a reranker: a pair's sigmoid score (its one label), the logit raw.
    let single = post(&app, "/predict", json!({"inputs": [query, texts[1]], "truncate": true})).await;
    assert_eq!(single.status, 200, "{}", single.text);
    assert_eq!(single.body[0]["label"], "LABEL_0", "{}", single.text);
    assert!((single.body[0]["score"].as_f64().expect("score") as f32 - scores[1]).abs() < 1e-4);
    let pairs: Vec<Value> = texts.iter().map(|t| json!([query, t])).collect();
    let batch = post(&app, "/predict", json!({"inputs": pairs, "raw_scores": true, "truncate": true})).await;
    assert_eq!(batch.status, 200, "{}", batch.text);
    for (i, labels) in batch.body.as_array().expect("one list per input").iter().enumerate() {
        assert!((labels[0]["score"].as_f64().expect("score") as f32 - raw_scores[i]).abs() < 1e-4, "pair {i}");
    }
    // `POST /` on a reranker: rerank for a query, predict otherwise.
    let root = post(&app, "/", json!({"query": query, "texts": texts, "truncate": true})).await;
    assert_eq!(root.status, 200, "{}", root.text);
    assert_eq!(root.body[0]["index"], ranks[0]["index"]);
    let root = post(&app, "/", json!({"inputs": [query, texts[1]], "truncate": true})).await;
    assert_eq!(root.body, single.body);
    let info = get(&app, "/info").await.body;
    assert_eq!(info["model_type"], json!({"reranker": {"id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}}}));

    let embed = post(&app, "/api/v1/embed", json!({"texts": ["a"]})).await;
    assert_eq!(embed.status, 422, "{}", embed.text);
    assert!(embed.text.contains("reranker"), "{}", embed.text);
    let missing = post(&app, "/v1/rerank", json!({"query": "q"})).await;
    assert_eq!(missing.status, 422, "{}", missing.text);
    assert!(missing.body["error"]["message"].is_string(), "OpenAI-style error shape: {}", missing.text);
}
