//! `EmbedService` on mocks of the store, tokenization and inference ports: limits before any work, the
//! deadline, readiness, token-id inputs through the same pipeline, the API key, and one
//! observation per request with its outcome.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aki_core::{
    ClassifierInput, EmbedError, EmbedOptions, EmbeddingProvider, EncodeOptions, Encoding, ErrorKind, Lane,
    LoadedModel, ModelInfo, ModelPipeline, ModelStore, ModelTask, Pooled, Pooling, Predictions, Priority, Prompts,
    RequestContext, Result, StoreStats, Tenant, Timing, Token, TokenVectors, Tokenization,
};
use aki_service::{
    ApiKey, BatchFacts, Caller, DecodeRequest, EmbedRequest, EmbedService, Finished, Inputs, LanePolicy, Limits,
    PredictRequest, PromptChoice, Ranked, RequestObserver, RerankRequest, SimilarityRequest, TenantKey, Tenants,
    TokenizeRequest,
};
use async_trait::async_trait;

mockall::mock! {
    Provider {}
    #[async_trait]
    impl EmbeddingProvider for Provider {
        async fn embed(&self, batch: Vec<Encoding>, context: RequestContext) -> Result<Pooled>;
        async fn predict(&self, batch: Vec<Encoding>, context: RequestContext) -> Result<Predictions>;
        async fn token_vectors(&self, batch: Vec<Encoding>, context: RequestContext) -> Result<TokenVectors>;
    }
}

mockall::mock! {
    Tokenizer {}
    #[async_trait]
    impl Tokenization for Tokenizer {
        async fn encode(&self, texts: Vec<String>, options: EncodeOptions) -> Result<Vec<Encoding>>;
        async fn encode_pairs(&self, pairs: Vec<(String, String)>, options: EncodeOptions) -> Result<Vec<Encoding>>;
        async fn decode(&self, ids: Vec<Vec<u32>>, skip_special_tokens: bool) -> Result<Vec<String>>;
        async fn tokenize(&self, texts: Vec<String>, add_special_tokens: bool) -> Result<Vec<Vec<Token>>>;
    }
}

/// A model made of mocks: its facts, its tokenizer and its inference side.
struct Fake {
    info: ModelInfo,
    tokenizer: MockTokenizer,
    provider: MockProvider,
}

impl Fake {
    fn new(info: ModelInfo) -> Self {
        Self { info, tokenizer: MockTokenizer::new(), provider: MockProvider::new() }
    }

    fn model(self) -> LoadedModel {
        Arc::new(ModelPipeline::new(self.info, Arc::new(self.tokenizer), Arc::new(self.provider)))
    }
}

mockall::mock! {
    Store {}
    #[async_trait]
    impl ModelStore for Store {
        async fn get_or_load(&self, model_id: &str) -> Result<LoadedModel>;
        async fn preload(&self, model_ids: &[String]) -> Result<()>;
        fn stats(&self) -> StoreStats;
    }
}

fn info() -> ModelInfo {
    ModelInfo {
        model_id: "default".into(),
        dimension: 4,
        max_input_tokens: 8,
        vocab_size: 50,
        pooling: Pooling::Mean,
        normalize_default: true,
        device: "cpu".into(),
        dtype: "f32".into(),
        is_padded: false,
        engine: "test".into(),
        ..ModelInfo::default()
    }
}

/// A model that encodes a text as `[1, len, 2]` and pools `[sum of ids, 0, 0, 0]`, taking
/// `delay` per call.
fn provider(delay: Duration) -> Fake {
    provider_of(info(), delay)
}

fn provider_of(info: ModelInfo, delay: Duration) -> Fake {
    let mut mock = Fake::new(info);
    mock.tokenizer.expect_encode().returning(|texts, _| {
        Ok(texts.iter().map(|t| Encoding { ids: vec![1, t.len() as u32, 2], type_ids: vec![0; 3] }).collect())
    });
    mock.provider.expect_embed().returning(move |batch, context| {
        std::thread::sleep(delay);
        if context.expired() {
            return Err(EmbedError::Timeout);
        }
        let vectors = batch.iter().map(|e| vec![e.ids.iter().sum::<u32>() as f32, 0.0, 0.0, 0.0]).collect();
        Ok(Pooled { vectors, timing: Timing { inference: delay, ..Timing::default() } })
    });
    mock
}

#[derive(Default)]
struct Seen(Mutex<Vec<(String, &'static str, usize)>>, Mutex<Vec<(String, Option<Lane>)>>);
impl RequestObserver for Seen {
    fn finished(&self, request: &Finished<'_>) {
        self.0.lock().expect("lock").push((request.route.to_string(), request.outcome.as_str(), request.tokens));
        self.1.lock().expect("lock").push((request.tenant.to_string(), request.queued.map(|(lane, _)| lane)));
    }
}
impl Seen {
    fn all(&self) -> Vec<(String, &'static str, usize)> {
        self.0.lock().expect("lock").clone()
    }

    /// The tenant and lane of each finished request.
    fn tenants_and_lanes(&self) -> Vec<(String, Option<Lane>)> {
        self.1.lock().expect("lock").clone()
    }
}

fn make(limits: Limits, key: Option<&str>, delay: Duration) -> (EmbedService, Arc<Seen>) {
    make_with(provider(delay), limits, key)
}

fn make_with(provider: Fake, limits: Limits, key: Option<&str>) -> (EmbedService, Arc<Seen>) {
    let tenants = Tenants::new(key.map(|k| ApiKey(k.into())), &[]).expect("valid keys");
    make_for(provider, (limits, LanePolicy::default()), tenants)
}

fn make_for(provider: Fake, policy: (Limits, LanePolicy), tenants: Tenants) -> (EmbedService, Arc<Seen>) {
    let model = provider.model();
    let mut store = MockStore::new();
    store.expect_get_or_load().returning(move |id| match id {
        "default" => Ok(Arc::clone(&model)),
        other => Err(EmbedError::NotFound(format!("model `{other}` is not served here"))),
    });
    let seen = Arc::new(Seen::default());
    let facts =
        BatchFacts { max_batch_size: 32, max_batch_tokens: 8192, max_concurrent_batches: 1, max_forward_batch: 32 };
    let service = EmbedService::new(Arc::new(store), vec!["default".into()], policy, facts, tenants, seen.clone());
    service.mark_ready();
    (service, seen)
}

fn texts(items: &[&str]) -> EmbedRequest {
    EmbedRequest {
        model: None,
        inputs: Inputs::Texts(items.iter().map(|s| (*s).to_string()).collect()),
        options: EmbedOptions::default(),
        prompt: PromptChoice::default(),
        deadline: None,
        caller: Caller::default(),
    }
}

#[tokio::test]
async fn prompts_go_before_each_text_and_count_in_the_usage() {
    let named = [("query", "q: "), ("doc", "document: ")].map(|(k, v)| (k.to_string(), v.to_string()));
    let prompts = Prompts { named: named.into_iter().collect(), default_name: Some("doc".into()) };
    let raw = EmbedOptions { normalize: Some(false), ..EmbedOptions::default() };
    let (service, _) = make_with(provider_of(ModelInfo { prompts, ..info() }, Duration::ZERO), Limits::default(), None);
    let ask = |name: Option<&str>, text: Option<&str>| EmbedRequest {
        options: raw,
        prompt: PromptChoice { name: name.map(Into::into), text: text.map(Into::into) },
        ..texts(&["abc"])
    };
    // The mock pools [1 + characters + 2]: the prompt's characters show in the vector.
    let pooled = |reply: aki_service::EmbedReply| reply.vectors[0][0];
    assert_eq!(pooled(service.embed("r", ask(Some("query"), None)).await.expect("named")), 9.0, "`q: abc`");
    assert_eq!(pooled(service.embed("r", ask(None, None)).await.expect("default")), 16.0, "`document: abc`");
    assert_eq!(pooled(service.embed("r", ask(None, Some(">> "))).await.expect("free")), 9.0, "`>> abc`");
    let unknown = service.embed("r", ask(Some("passage"), None)).await.expect_err("unknown name");
    assert!(unknown.to_string().contains("doc, query"), "{unknown}");
    let both = service.embed("r", ask(Some("query"), Some("x"))).await.expect_err("both");
    assert_eq!(both.kind(), ErrorKind::Validation);
    let ids = EmbedRequest { inputs: Inputs::TokenIds(vec![vec![1, 2]]), ..ask(Some("query"), None) };
    assert_eq!(service.embed("r", ids).await.expect_err("ids").kind(), ErrorKind::Validation);
    let long = EmbedRequest { prompt: PromptChoice { name: None, text: Some("p".repeat(5000)) }, ..texts(&["a"]) };
    let limits = Limits { max_input_chars: 100, ..Limits::default() };
    let (strict, _) = make(limits, None, Duration::ZERO);
    assert_eq!(strict.embed("r", long).await.expect_err("long prompt").kind(), ErrorKind::Validation);
}

fn reranker() -> Fake {
    let mut mock = Fake::new(ModelInfo { dimension: 1, task: ModelTask::Rerank, ..info() });
    // A pair scores its text's length minus 3: logits -3 + len.
    mock.tokenizer.expect_encode_pairs().returning(|pairs, _| {
        Ok(pairs.iter().map(|(_, t)| Encoding { ids: vec![0, t.len() as u32, 0], type_ids: vec![0; 3] }).collect())
    });
    mock.provider.expect_predict().returning(|batch, _| {
        let logits = batch.iter().map(|e| vec![e.ids[1] as f32 - 3.0]).collect();
        Ok(Predictions { logits, timing: Timing::default() })
    });
    mock
}

fn rerank(texts: &[&str], raw_scores: bool, top_n: Option<usize>) -> RerankRequest {
    RerankRequest {
        model: None,
        query: "q".into(),
        texts: texts.iter().map(|s| (*s).to_string()).collect(),
        encode: EncodeOptions::default(),
        raw_scores,
        top_n,
        deadline: None,
        caller: Caller::default(),
    }
}

#[tokio::test]
async fn rerank_orders_texts_best_first_with_sigmoid_or_raw_scores() {
    let (service, seen) = make_with(reranker(), Limits::default(), None);
    let reply = service.rerank("rr", rerank(&["ab", "abcde", "abc"], false, None)).await.expect("ranked");
    assert_eq!(reply.ranked.iter().map(|r| r.index).collect::<Vec<_>>(), [1, 2, 0]);
    let sigmoid = |x: f32| 1.0 / (1.0 + (-x).exp());
    assert!((reply.ranked[0].score - sigmoid(2.0)).abs() < 1e-6 && (reply.ranked[1].score - 0.5).abs() < 1e-6);
    assert_eq!(reply.tokens, 9);
    let raw = service.rerank("rr", rerank(&["ab", "abcde", "abc"], true, Some(2))).await.expect("raw");
    assert_eq!(raw.ranked, vec![Ranked { index: 1, score: 2.0 }, Ranked { index: 2, score: 0.0 }]);
    let none = service.rerank("rr", rerank(&["a"], false, Some(0))).await.expect_err("top_n 0");
    assert_eq!(none.kind(), ErrorKind::Validation);
    let empty = service.rerank("rr", rerank(&[], false, None)).await.expect_err("no texts");
    assert_eq!(empty.kind(), ErrorKind::Empty);
    assert_eq!(seen.all().iter().filter(|(_, outcome, _)| *outcome == "ok").count(), 2);

    let (embedder, _) = make(Limits::default(), None, Duration::ZERO);
    let refused = embedder.rerank("rr", rerank(&["a"], false, None)).await.expect_err("an embedder");
    assert!(refused.to_string().contains("cannot rerank"), "{refused}");
}

#[tokio::test]
async fn texts_and_token_ids_go_through_one_pipeline_with_usage_and_timing() {
    let (service, seen) = make(Limits::default(), None, Duration::from_millis(5));
    let by_text = service.embed("r", texts(&["abc"])).await.expect("text");
    assert_eq!((by_text.model.as_str(), by_text.dimension, by_text.tokens), ("default", 4, 3));
    assert_eq!(by_text.vectors, vec![vec![1.0, 0.0, 0.0, 0.0]], "pooled [6, 0, 0, 0], normalised");
    assert!(by_text.timing.inference >= Duration::from_millis(5) && by_text.total >= by_text.timing.inference);

    let ids = EmbedRequest {
        inputs: Inputs::TokenIds(vec![vec![1, 3, 2]]),
        options: EmbedOptions { dimensions: Some(2), normalize: Some(false), ..EmbedOptions::default() },
        ..texts(&[])
    };
    let by_ids = service.embed("r", ids).await.expect("ids");
    assert_eq!((by_ids.dimension, by_ids.tokens), (2, 3));
    assert_eq!(by_ids.vectors, vec![vec![6.0, 0.0]]);
    assert_eq!(seen.all(), vec![("r".into(), "ok", 3), ("r".into(), "ok", 3)]);
}

#[tokio::test]
async fn limits_are_checked_before_the_model_is_asked_for() {
    let limits = Limits { max_inputs: 2, max_input_chars: 5, ..Limits::default() };
    let (service, seen) = make(limits, None, Duration::ZERO);
    let cases = [
        (texts(&[]), ErrorKind::Empty),
        (texts(&["a", "b", "c"]), ErrorKind::Validation),
        (texts(&["toolong"]), ErrorKind::Validation),
        (EmbedRequest { inputs: Inputs::TokenIds(vec![vec![]]), ..texts(&[]) }, ErrorKind::Validation),
        (EmbedRequest { inputs: Inputs::TokenIds(vec![vec![1, 50]]), ..texts(&[]) }, ErrorKind::Validation),
        (EmbedRequest { model: Some("other".into()), ..texts(&["a"]) }, ErrorKind::NotFound),
        (
            EmbedRequest { options: EmbedOptions { dimensions: Some(5), ..EmbedOptions::default() }, ..texts(&["a"]) },
            ErrorKind::Validation,
        ),
    ];
    for (request, kind) in cases {
        let err = service.embed("r", request.clone()).await.expect_err("refused");
        assert_eq!(err.kind(), kind, "{request:?}: {err}");
    }
    let outcomes: Vec<&str> = seen.all().into_iter().map(|(_, o, _)| o).collect();
    assert_eq!(outcomes, ["empty", "validation", "validation", "validation", "validation", "not_found", "validation"]);
}

#[tokio::test]
async fn the_deadline_is_the_clients_capped_by_the_request_timeout() {
    // The fake model takes 120 ms and fails with a timeout when its context's deadline passed.
    let slow = Duration::from_millis(120);
    let (capped, seen) = make(Limits { request_timeout_ms: 50, ..Limits::default() }, None, slow);
    assert_eq!(capped.embed("r", texts(&["a"])).await.expect_err("server timeout"), EmbedError::Timeout);
    assert_eq!(seen.all()[0].1, "timeout");

    let (patient, _) = make(Limits { request_timeout_ms: 10_000, ..Limits::default() }, None, slow);
    patient.embed("r", texts(&["a"])).await.expect("within the server's timeout");
    let hurried = EmbedRequest { deadline: Some(Instant::now() + Duration::from_millis(30)), ..texts(&["a"]) };
    assert_eq!(patient.embed("r", hurried).await.expect_err("client deadline"), EmbedError::Timeout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_concurrency_bound_requests_are_refused_at_once() {
    let limits = Limits { max_concurrent_requests: 1, ..Limits::default() };
    let (service, seen) = make(limits, None, Duration::from_millis(400));
    let service = Arc::new(service);
    let busy = tokio::spawn({
        let service = Arc::clone(&service);
        async move { service.embed("r", texts(&["slow"])).await }
    });
    while service.in_flight() == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let started = Instant::now();
    let refused = service.embed("r", texts(&["a"])).await.expect_err("over the bound");
    assert_eq!(refused.kind(), ErrorKind::Overloaded);
    assert!(started.elapsed() < Duration::from_millis(100), "refused at once, not after the busy request");
    assert!(!busy.is_finished(), "the busy request is still running");
    busy.await.expect("task").expect("the admitted request is served");
    assert_eq!(service.in_flight(), 0);
    service.embed("r", texts(&["a"])).await.expect("admitted again once the first is done");
    let outcomes: Vec<&str> = seen.all().into_iter().map(|(_, o, _)| o).collect();
    assert_eq!(outcomes, ["overloaded", "ok", "ok"]);
}

#[tokio::test]
async fn nothing_is_served_before_ready_and_readiness_ends_when_draining() {
    let (service, _) = make(Limits::default(), None, Duration::ZERO);
    let fresh = EmbedService::new(
        Arc::new(MockStore::new()),
        vec!["default".into()],
        (Limits::default(), LanePolicy::default()),
        BatchFacts { max_batch_size: 1, max_batch_tokens: 1, max_concurrent_batches: 1, max_forward_batch: 1 },
        Tenants::open(),
        Arc::new(aki_service::NoRequestObserver),
    );
    assert!(!fresh.is_ready());
    assert_eq!(fresh.embed("r", texts(&["a"])).await.expect_err("loading").kind(), ErrorKind::Unavailable);
    assert!(service.is_ready());
    service.mark_draining();
    assert!(!service.is_ready(), "probes fail once draining");
    service.embed("r", texts(&["a"])).await.expect("requests that still arrive are served");
}

#[tokio::test]
async fn the_key_is_checked_and_refusals_counted() {
    let (service, seen) = make(Limits::default(), Some("k3y"), Duration::ZERO);
    assert!(service.authorize("r", Some("k3y")).is_ok());
    assert_eq!(service.authorize("r", Some("nope")), Err(EmbedError::Unauthorized));
    assert_eq!(service.authorize("r", None), Err(EmbedError::Unauthorized));
    assert_eq!(seen.all(), vec![("r".into(), "unauthorized", 0), ("r".into(), "unauthorized", 0)]);
    let (open, _) = make(Limits::default(), None, Duration::ZERO);
    assert!(open.authorize("r", None).is_ok(), "no key configured, no check");
}

#[tokio::test]
async fn tokenize_and_info_answer_through_the_same_limits_and_model() {
    let mut mock = provider(Duration::ZERO);
    mock.tokenizer.expect_tokenize().returning(|texts, _| {
        Ok(texts
            .iter()
            .map(|t| vec![Token { id: 7, text: t.clone(), special: false, start: 0, stop: t.len() }])
            .collect())
    });
    let model = mock.model();
    let mut store = MockStore::new();
    store.expect_get_or_load().returning(move |_| Ok(Arc::clone(&model)));
    let limits = Limits { max_inputs: 1, ..Limits::default() };
    let facts =
        BatchFacts { max_batch_size: 32, max_batch_tokens: 8192, max_concurrent_batches: 1, max_forward_batch: 32 };
    let service = EmbedService::new(
        Arc::new(store),
        vec!["default".into(), "other".into()],
        (limits, LanePolicy::default()),
        facts,
        Tenants::open(),
        Arc::new(aki_service::NoRequestObserver),
    );
    service.mark_ready();
    let request = TokenizeRequest {
        model: None,
        texts: vec!["hi".into()],
        add_special_tokens: true,
        prompt: PromptChoice::default(),
        deadline: None,
    };
    assert_eq!(service.tokenize("t", request.clone()).await.expect("tokens")[0][0].text, "hi");
    let two = TokenizeRequest { texts: vec!["a".into(), "b".into()], ..request };
    assert_eq!(service.tokenize("t", two).await.expect_err("too many").kind(), ErrorKind::Validation);
    let info = service.info("i").await.expect("info");
    assert_eq!((info.model.dimension, info.max_client_batch_size, info.batching), (4, 1, facts));
    assert_eq!(info.models, ["default", "other"]);
    assert_eq!(service.models("m"), ["default", "other"]);
}

#[tokio::test]
async fn the_lane_follows_size_or_priority_and_each_tenant_keeps_to_its_token_rate() {
    let key = |name: &str, weight, tokens_per_minute| TenantKey {
        name: name.into(),
        key: ApiKey(format!("k-{name}")),
        weight,
        tokens_per_minute,
    };
    let tenants = Tenants::new(None, &[key("a", 2, Some(12)), key("b", 1, None)]).expect("valid keys");
    let contexts = Arc::new(Mutex::new(Vec::new()));
    let mut fake = Fake::new(info());
    fake.tokenizer.expect_encode().returning(|texts, _| {
        Ok(texts.iter().map(|t| Encoding { ids: vec![1, t.len() as u32, 2], type_ids: vec![0; 3] }).collect())
    });
    let seen_contexts = Arc::clone(&contexts);
    fake.provider.expect_embed().returning(move |batch, context| {
        seen_contexts.lock().expect("lock").push(context);
        Ok(Pooled { vectors: vec![vec![1.0, 0.0, 0.0, 0.0]; batch.len()], timing: Timing::default() })
    });
    let policy = LanePolicy { bulk_above_tokens: 5, ..LanePolicy::default() };
    let (service, seen) = make_for(fake, (Limits::default(), policy), tenants);
    let (a, b) =
        (service.authorize("r", Some("k-a")).expect("a's key"), service.authorize("r", Some("k-b")).expect("b"));
    assert_eq!(a, Tenant::new("a", 2));
    let by = |tenant: &Tenant, priority, items: &[&str]| EmbedRequest {
        caller: Caller { tenant: tenant.clone(), priority, requester: None },
        ..texts(items)
    };
    // 3 tokens per text: one text is interactive, two (6 > 5) are bulk unless asked otherwise.
    assert_eq!(service.embed("r", by(&a, Priority::Auto, &["x"])).await.expect("served").lane, Lane::Interactive);
    assert_eq!(service.embed("r", by(&a, Priority::Auto, &["x", "y"])).await.expect("served").lane, Lane::Bulk);
    let asked = service.embed("r", by(&b, Priority::Interactive, &["x", "y"])).await.expect("served");
    assert_eq!(asked.lane, Lane::Interactive);
    assert_eq!(service.embed("r", by(&b, Priority::Bulk, &["x"])).await.expect("served").lane, Lane::Bulk);
    // `a` has used 9 of its 12 tokens a minute: 3 more fit, 3 after that do not.
    service.embed("r", by(&a, Priority::Auto, &["x"])).await.expect("within the rate");
    let refused = service.embed("r", by(&a, Priority::Auto, &["x"])).await.expect_err("over the rate");
    assert!(matches!(refused, EmbedError::Busy { .. }), "{refused:?}");
    assert!(refused.retry_after().is_some_and(|wait| wait >= Duration::from_secs(1)));
    service.embed("r", by(&b, Priority::Auto, &["x"])).await.expect("b has no rate");
    // The inference side saw each request's lane and tenant, and metrics saw them too.
    let lanes: Vec<(Lane, String)> =
        contexts.lock().expect("lock").iter().map(|c| (c.lane, c.tenant.name.to_string())).collect();
    let (i, u) = (Lane::Interactive, Lane::Bulk);
    let named = |lane, name: &str| (lane, name.to_string());
    assert_eq!(lanes, [named(i, "a"), named(u, "a"), named(i, "b"), named(u, "b"), named(i, "a"), named(i, "b")]);
    let observed = seen.tenants_and_lanes();
    assert_eq!(observed[5], ("a".to_string(), None), "the refusal is counted for a, with no lane");
    assert_eq!(observed[0], ("a".to_string(), Some(Lane::Interactive)));
    assert!(contexts.lock().expect("lock").iter().all(|c| c.deadline.is_some()));
}

/// A three-label classifier: a text encodes as `[1, len, 2]`, a pair as `[1, len a, len b, 2]`;
/// the logits are `[ids, 0, -ids]` where `ids` is the sum of the ids.
fn classifier() -> Fake {
    let labels = vec!["positive".to_string(), "neutral".to_string(), "negative".to_string()];
    let mut mock = Fake::new(ModelInfo { dimension: 3, task: ModelTask::Rerank, labels, ..info() });
    mock.tokenizer.expect_encode().returning(|texts, _| {
        Ok(texts.iter().map(|t| Encoding { ids: vec![1, t.len() as u32, 2], type_ids: vec![0; 3] }).collect())
    });
    mock.tokenizer.expect_encode_pairs().returning(|pairs, _| {
        let pair = |(a, b): &(String, String)| Encoding {
            ids: vec![1, a.len() as u32, b.len() as u32, 2],
            type_ids: vec![0, 0, 1, 1],
        };
        Ok(pairs.iter().map(pair).collect())
    });
    mock.provider.expect_predict().returning(|batch, _| {
        let logits = batch.iter().map(|e| {
            let ids = e.ids.iter().sum::<u32>() as f32 / 10.0;
            vec![ids, 0.0, -ids]
        });
        Ok(Predictions { logits: logits.collect(), timing: Timing::default() })
    });
    mock
}

#[tokio::test]
async fn predict_answers_texts_and_pairs_in_order_with_every_label() {
    let (service, seen) = make_with(classifier(), Limits::default(), None);
    let inputs = vec![
        ClassifierInput::Pair("ab".into(), "cde".into()),
        ClassifierInput::Single("x".into()),
        ClassifierInput::Pair("ab".into(), "".into()),
        ClassifierInput::Single("wxyz".into()),
    ];
    let request = PredictRequest {
        model: None,
        inputs,
        encode: EncodeOptions::default(),
        raw_scores: true,
        deadline: None,
        caller: Caller::default(),
    };
    let reply = service.predict("/predict", request.clone()).await.expect("predict");
    // Raw logits, best first: each input's first logit is the sum of its ids over 10.
    let firsts: Vec<f32> = reply.predictions.iter().map(|labels| labels[0].score).collect();
    assert_eq!(firsts, [0.8, 0.4, 0.5, 0.7], "every input its own answer, in order");
    assert!(reply.predictions.iter().all(|labels| labels[0].label == "positive" && labels[2].label == "negative"));
    assert_eq!(reply.tokens, 4 + 3 + 4 + 3);
    let probabilities =
        service.predict("/predict", PredictRequest { raw_scores: false, ..request }).await.expect("predict");
    for labels in &probabilities.predictions {
        let total: f32 = labels.iter().map(|p| p.score).sum();
        assert!((total - 1.0).abs() < 1e-5, "a softmax over the labels: {labels:?}");
    }
    assert_eq!(seen.all()[0], ("/predict".to_string(), "ok", 14));

    // An embedder cannot classify.
    let (embedder, _) = make(Limits::default(), None, Duration::ZERO);
    let one = PredictRequest {
        model: None,
        inputs: vec![ClassifierInput::Single("a".into())],
        encode: EncodeOptions::default(),
        raw_scores: false,
        deadline: None,
        caller: Caller::default(),
    };
    let refused = embedder.predict("/predict", one).await.expect_err("an embedder");
    assert_eq!(refused.kind(), ErrorKind::Validation);
}

#[tokio::test]
async fn similarity_compares_each_sentence_to_the_source_and_decode_is_limited() {
    let (service, seen) = make(Limits::default(), None, Duration::ZERO);
    let request = SimilarityRequest {
        model: None,
        source: "ab".into(),
        sentences: vec!["abc".into(), "ab".into()],
        encode: EncodeOptions::default(),
        prompt: PromptChoice::default(),
        deadline: None,
        caller: Caller::default(),
    };
    // Every vector is [sum of ids, 0, 0, 0]: unit vectors along one axis, cosine 1.
    let reply = service.similarity("/similarity", request.clone()).await.expect("similarity");
    assert_eq!(reply.scores, [1.0, 1.0]);
    assert_eq!(reply.embedded.tokens, 9, "the source and both sentences");
    let none = service.similarity("/similarity", SimilarityRequest { sentences: vec![], ..request }).await;
    assert_eq!(none.expect_err("no sentences").kind(), ErrorKind::Empty);
    assert_eq!(seen.all().iter().map(|(_, outcome, _)| *outcome).collect::<Vec<_>>(), ["ok", "empty"]);

    let mut decoding = provider(Duration::ZERO);
    decoding
        .tokenizer
        .expect_decode()
        .returning(|ids, skip| Ok(ids.iter().map(|list| format!("{} ids, skip {skip}", list.len())).collect()));
    let limits = Limits { max_request_chars: 4, ..Limits::default() };
    let (service, _) = make_with(decoding, limits, None);
    let decode = |ids: Vec<Vec<u32>>| DecodeRequest { model: None, ids, skip_special_tokens: true, deadline: None };
    let texts = service.decode("/decode", decode(vec![vec![1, 2], vec![3]])).await.expect("decode");
    assert_eq!(texts, ["2 ids, skip true", "1 ids, skip true"]);
    let outside = service.decode("/decode", decode(vec![vec![50]])).await.expect_err("outside the vocabulary");
    assert_eq!(outside.kind(), ErrorKind::Validation);
    let many = service.decode("/decode", decode(vec![vec![1, 2, 3], vec![4, 5]])).await.expect_err("too many ids");
    assert!(many.to_string().contains("5 token ids"), "{many}");
}
