//! `EmbedService`: the whole flow of a request, read top to bottom in [`EmbedService::embed`]:
//! admission, limits, deadline, model, the model's pipeline, usage and timing, metrics.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use aki_core::{EmbedError, LoadedModel, ModelStore, ModelTask, RequestContext, Result, Token};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::ApiKey;
use crate::limits::Limits;
use crate::observer::{Outcome, RequestObserver};
use crate::requests::{
    BatchFacts, EmbedReply, EmbedRequest, Inputs, PromptChoice, Ranked, RerankReply, RerankRequest, ServerInfo,
    TokenizeRequest,
};

const LOADING: u8 = 0;
const READY: u8 = 1;
const DRAINING: u8 = 2;

/// The application service over a model store.
pub struct EmbedService {
    store: Arc<dyn ModelStore>,
    default_model: String,
    models: Vec<String>,
    limits: Limits,
    batching: BatchFacts,
    key: Option<ApiKey>,
    observer: Arc<dyn RequestObserver>,
    state: AtomicU8,
    in_flight: Arc<Semaphore>,
}

impl EmbedService {
    /// A service answering from `store`: `models` are the ids requests may name, the default
    /// first. It refuses work as unavailable until [`mark_ready`](Self::mark_ready).
    pub fn new(
        store: Arc<dyn ModelStore>,
        models: Vec<String>,
        limits: Limits,
        batching: BatchFacts,
        key: Option<ApiKey>,
        observer: Arc<dyn RequestObserver>,
    ) -> Self {
        let default_model = models.first().cloned().unwrap_or_default();
        let in_flight = Arc::new(Semaphore::new(limits.max_concurrent_requests));
        Self { store, default_model, models, limits, batching, key, observer, state: AtomicU8::new(LOADING), in_flight }
    }

    /// The default model is loaded and warm: serve, and say so to readiness probes (unless the
    /// server already began draining while it loaded).
    pub fn mark_ready(&self) {
        let _ = self.state.compare_exchange(LOADING, READY, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The server is stopping: readiness probes fail from now on so load balancers send no new
    /// work, while requests that still arrive are served.
    pub fn mark_draining(&self) {
        self.state.store(DRAINING, Ordering::SeqCst);
    }

    /// Whether a load balancer should send work here: loaded, warm and not stopping.
    pub fn is_ready(&self) -> bool {
        self.state.load(Ordering::SeqCst) == READY
    }

    /// Requests being worked on now.
    pub fn in_flight(&self) -> usize {
        self.limits.max_concurrent_requests - self.in_flight.available_permits()
    }

    /// The request limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Checks the token a client presented (`None` when it sent none) against the API key,
    /// when one is configured; a refusal is counted on `route`.
    ///
    /// # Errors
    /// [`EmbedError::Unauthorized`] when a key is configured and `token` is not it.
    pub fn authorize(&self, route: &str, token: Option<&str>) -> Result<()> {
        match &self.key {
            Some(key) if !key.matches(token) => {
                self.reject(route, &EmbedError::Unauthorized);
                Err(EmbedError::Unauthorized)
            }
            _ => Ok(()),
        }
    }

    /// Counts a request on `route` that an adapter refused before it reached the service (a
    /// body that is not the route's JSON, say).
    pub fn reject(&self, route: &str, error: &EmbedError) {
        self.observer.finished(route, Outcome::Failed(error.kind()), Duration::ZERO, 0);
    }

    /// Embeds a request's inputs.
    ///
    /// # Errors
    /// [`EmbedError::Empty`] or [`EmbedError::Validation`] for inputs over the limits or bad
    /// options, [`EmbedError::Unavailable`] while the default model loads, the store's errors
    /// (model not served, load failure), [`EmbedError::Timeout`] past the deadline, and the
    /// pipeline's errors.
    pub async fn embed(&self, route: &str, request: EmbedRequest) -> Result<EmbedReply> {
        let started = Instant::now();
        let deadline = self.deadline(request.deadline);
        let work = async {
            let _admitted = self.admit()?;
            request.inputs.check(&self.limits)?;
            let model = self.model(request.model.as_deref()).await?;
            let context = RequestContext::until(deadline);
            let out = match request.inputs {
                Inputs::Texts(texts) => {
                    let texts = self.prompted(&model, &request.prompt, texts)?;
                    model.embed(texts, request.options, context).await?
                }
                Inputs::TokenIds(lists) => {
                    if request.prompt != PromptChoice::default() {
                        return Err(EmbedError::Validation(
                            "a prompt applies to texts; token-id inputs are complete model inputs".into(),
                        ));
                    }
                    model.embed_tokens(lists, request.options, context).await?
                }
            };
            let info = model.info();
            Ok(EmbedReply {
                model: info.model_id.clone(),
                dimension: request.options.dimensions.unwrap_or(info.dimension),
                tokens: out.tokens(),
                vectors: out.vectors,
                timing: out.timing,
                total: started.elapsed(),
            })
        };
        let result = within(deadline, work).await;
        self.finish(route, started, &result, |reply| reply.tokens);
        result
    }

    /// Ranks `texts` by relevance to `query` with the (cross-encoder) model.
    ///
    /// # Errors
    /// As [`embed`](Self::embed), and [`EmbedError::Validation`] when the model is not a
    /// reranker with one output or `top_n` is 0.
    pub async fn rerank(&self, route: &str, request: RerankRequest) -> Result<RerankReply> {
        let started = Instant::now();
        let deadline = self.deadline(request.deadline);
        let work = async {
            let _admitted = self.admit()?;
            self.limits.check_texts(&request.texts)?;
            let query_chars = request.query.chars().count();
            self.limits.check(1, query_chars, query_chars * request.texts.len())?;
            if request.top_n == Some(0) {
                return Err(EmbedError::Validation("`top_n` must be at least 1".into()));
            }
            let model = self.model(request.model.as_deref()).await?;
            let info = model.info();
            if info.task == ModelTask::Rerank && info.dimension != 1 {
                return Err(EmbedError::Validation(format!(
                    "model `{}` has {} output labels; reranking needs a cross-encoder with one",
                    info.model_id, info.dimension
                )));
            }
            let context = RequestContext::until(deadline);
            let out = model.score_pairs(request.query, request.texts, request.encode, context).await?;
            let mut ranked: Vec<Ranked> = out
                .logits
                .iter()
                .enumerate()
                .map(|(index, logits)| {
                    let logit = logits[0];
                    Ranked { index, score: if request.raw_scores { logit } else { 1.0 / (1.0 + (-logit).exp()) } }
                })
                .collect();
            ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
            ranked.truncate(request.top_n.unwrap_or(usize::MAX));
            Ok(RerankReply {
                model: info.model_id.clone(),
                ranked,
                tokens: out.tokens(),
                timing: out.timing,
                total: started.elapsed(),
            })
        };
        let result = within(deadline, work).await;
        self.finish(route, started, &result, |reply| reply.tokens);
        result
    }

    /// `texts` with the chosen prompt before each, checked against the limits again (a prompt
    /// makes every text longer).
    fn prompted(&self, model: &LoadedModel, choice: &PromptChoice, texts: Vec<String>) -> Result<Vec<String>> {
        let texts = model.prompted(choice.text.as_deref(), choice.name.as_deref(), texts)?;
        self.limits.check_texts(&texts)?;
        Ok(texts)
    }

    /// The tokens of each text, for display.
    ///
    /// # Errors
    /// As [`embed`](Self::embed), for the texts' limits, the model and the deadline.
    pub async fn tokenize(&self, route: &str, request: TokenizeRequest) -> Result<Vec<Vec<Token>>> {
        let started = Instant::now();
        let work = async {
            let _admitted = self.admit()?;
            self.limits.check_texts(&request.texts)?;
            let model = self.model(request.model.as_deref()).await?;
            model.tokenize(request.texts, request.add_special_tokens).await
        };
        let result = within(self.deadline(request.deadline), work).await;
        self.finish(route, started, &result, |_| 0);
        result
    }

    /// Facts about the default model and the limits in force.
    ///
    /// # Errors
    /// [`EmbedError::Unavailable`] while the default model loads.
    pub async fn info(&self, route: &str) -> Result<ServerInfo> {
        let started = Instant::now();
        let result = within(self.deadline(None), self.model(None)).await.map(|model| ServerInfo {
            model: model.info().clone(),
            batching: self.batching,
            max_client_batch_size: self.limits.max_inputs,
            models: self.models.clone(),
            version: env!("CARGO_PKG_VERSION"),
        });
        self.finish(route, started, &result, |_| 0);
        result
    }

    /// Model ids requests may name, the default first.
    pub fn models(&self, route: &str) -> Vec<String> {
        self.observer.finished(route, Outcome::Ok, Duration::ZERO, 0);
        self.models.clone()
    }

    /// A place among the requests in flight, held until the request ends; none free means
    /// overloaded, at once.
    fn admit(&self) -> Result<OwnedSemaphorePermit> {
        Arc::clone(&self.in_flight).try_acquire_owned().map_err(|_| {
            EmbedError::Overloaded(format!(
                "{} requests are in flight, the most this server takes at once; retry shortly",
                self.limits.max_concurrent_requests
            ))
        })
    }

    /// The request's deadline: the client's, capped by `request_timeout_ms` from now.
    fn deadline(&self, client: Option<Instant>) -> Instant {
        let own = Instant::now() + self.limits.request_timeout();
        client.map_or(own, |c| c.min(own))
    }

    /// The model `requested` (or the default), once the default one is ready.
    async fn model(&self, requested: Option<&str>) -> Result<LoadedModel> {
        if self.state.load(Ordering::SeqCst) == LOADING {
            return Err(EmbedError::Unavailable("the model is still loading".into()));
        }
        self.store.get_or_load(requested.unwrap_or(&self.default_model)).await
    }

    fn finish<T>(&self, route: &str, started: Instant, result: &Result<T>, tokens: impl Fn(&T) -> usize) {
        let (outcome, tokens) = match result {
            Ok(value) => (Outcome::Ok, tokens(value)),
            Err(error) => (Outcome::Failed(error.kind()), 0),
        };
        self.observer.finished(route, outcome, started.elapsed(), tokens);
    }
}

/// `work`, or [`EmbedError::Timeout`] once `deadline` passes.
async fn within<T>(deadline: Instant, work: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout_at(deadline.into(), work).await.unwrap_or(Err(EmbedError::Timeout))
}
