//! `EmbedService`: the application service, its state (readiness, requests in flight) and the
//! steps every request shares: admission, the model, lane, tenant rate and deadline
//! ([`schedule`](EmbedService::schedule)), metrics; rerank, read top to bottom. The embedding
//! flow is in `embeddings.rs`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use aki_core::{EmbedError, Lane, LoadedModel, ModelStore, ModelTask, RequestContext, Result, Tenant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::lanes::{LanePolicy, Requester};
use crate::limits::Limits;
use crate::observer::{Finished, Outcome, RequestObserver};
use crate::requests::{BatchFacts, Caller, PromptChoice, Ranked, RerankReply, RerankRequest, ServerInfo};
use crate::tenants::Tenants;

/// The tenant label of requests refused before their key was known, or of routes that do not
/// say whose they are.
pub(crate) const UNKNOWN_TENANT: &str = "unknown";

const LOADING: u8 = 0;
const READY: u8 = 1;
const DRAINING: u8 = 2;

/// The application service over a model store.
pub struct EmbedService {
    store: Arc<dyn ModelStore>,
    default_model: String,
    models: Vec<String>,
    limits: Limits,
    lanes: LanePolicy,
    batching: BatchFacts,
    tenants: Tenants,
    observer: Arc<dyn RequestObserver>,
    state: AtomicU8,
    in_flight: Arc<Semaphore>,
}

impl EmbedService {
    /// A service answering from `store`: `models` are the ids requests may name, the default
    /// first; `tenants` are the keys it takes. It refuses work as unavailable until
    /// [`mark_ready`](Self::mark_ready).
    pub fn new(
        store: Arc<dyn ModelStore>,
        models: Vec<String>,
        (limits, lanes): (Limits, LanePolicy),
        batching: BatchFacts,
        tenants: Tenants,
        observer: Arc<dyn RequestObserver>,
    ) -> Self {
        let default_model = models.first().cloned().unwrap_or_default();
        let in_flight = Arc::new(Semaphore::new(limits.max_concurrent_requests));
        let state = AtomicU8::new(LOADING);
        Self { store, default_model, models, limits, lanes, batching, tenants, observer, state, in_flight }
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

    /// The tenant whose key a client presented (`None` when it sent none); without
    /// configured keys, the `default` tenant. A refusal is counted on `route`.
    ///
    /// # Errors
    /// [`EmbedError::Unauthorized`] when keys are configured and `token` is none of them.
    pub fn authorize(&self, route: &str, token: Option<&str>) -> Result<Tenant> {
        self.tenants.identify(token).inspect_err(|error| self.reject(route, error))
    }

    /// Counts a request on `route` that an adapter refused before it reached the service (a
    /// body that is not the route's JSON, say).
    pub fn reject(&self, route: &str, error: &EmbedError) {
        let outcome = Outcome::Failed(error.kind());
        let finished =
            Finished { route, outcome, elapsed: Duration::ZERO, tokens: 0, tenant: UNKNOWN_TENANT, queued: None };
        self.observer.finished(&finished);
    }

    /// Ranks `texts` by relevance to `query` with the (cross-encoder) model.
    ///
    /// # Errors
    /// As [`embed`](Self::embed), and [`EmbedError::Validation`] when the model is not a
    /// reranker with one output or `top_n` is 0.
    pub async fn rerank(&self, route: &str, request: RerankRequest) -> Result<RerankReply> {
        let started = Instant::now();
        let RerankRequest { model, query, texts, encode, raw_scores, top_n, deadline, caller } = request;
        let work = async {
            let _admitted = self.admit()?;
            self.limits.check_texts(&texts)?;
            let query_chars = query.chars().count();
            self.limits.check(1, query_chars, query_chars * texts.len())?;
            if top_n == Some(0) {
                return Err(EmbedError::Validation("`top_n` must be at least 1".into()));
            }
            let preparing = async {
                let model = self.model(model.as_deref()).await?;
                let info = model.info();
                if info.task == ModelTask::Rerank && !info.is_reranker() {
                    return Err(EmbedError::Validation(format!(
                        "model `{}` has {} output labels; reranking needs a cross-encoder with one",
                        info.model_id, info.dimension
                    )));
                }
                let prepared = tokenizing(model.prepare_pairs(query, texts, encode)).await?;
                Ok((model, prepared))
            };
            let (model, prepared) = within(self.deadline(deadline, Lane::Interactive, started), preparing).await?;
            let (context, until) = self.schedule(&caller, prepared.tokens(), deadline, started)?;
            let lane = context.lane;
            let out = within(until, model.score_prepared(prepared, context)).await?;
            let mut ranked: Vec<Ranked> = out
                .logits
                .iter()
                .enumerate()
                .map(|(index, logits)| {
                    let logit = logits[0];
                    Ranked { index, score: if raw_scores { logit } else { 1.0 / (1.0 + (-logit).exp()) } }
                })
                .collect();
            ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
            ranked.truncate(top_n.unwrap_or(usize::MAX));
            Ok(RerankReply {
                model: model.info().model_id.clone(),
                ranked,
                tokens: out.tokens(),
                lane,
                timing: out.timing,
                total: started.elapsed(),
            })
        };
        let result = work.await;
        self.finish(route, started, &caller.tenant, &result, |reply| {
            (reply.tokens, Some((reply.lane, reply.timing.queue)))
        });
        result
    }

    /// Once a request's `tokens` are known: its lane, its tenant's token rate, and its deadline
    /// (the client's, capped by its lane's timeout from `arrived`), as the context its inference
    /// runs in.
    pub(crate) fn schedule(
        &self,
        caller: &Caller,
        tokens: usize,
        client: Option<Instant>,
        arrived: Instant,
    ) -> Result<(RequestContext, Instant)> {
        let lane = self.lanes.lane(caller.priority, tokens, caller.requester.as_ref());
        self.tenants.charge(&caller.tenant, tokens)?;
        let deadline = self.deadline(client, lane, arrived);
        let context = RequestContext {
            deadline: Some(deadline),
            lane,
            tenant: caller.tenant.clone(),
            requester: caller.requester.as_ref().map(Requester::id),
        };
        Ok((context, deadline))
    }

    /// `texts` with the chosen prompt before each, checked against the limits again (a prompt
    /// makes every text longer).
    pub(crate) fn prompted(
        &self,
        model: &LoadedModel,
        choice: &PromptChoice,
        texts: Vec<String>,
    ) -> Result<Vec<String>> {
        let texts = model.prompted(choice.text.as_deref(), choice.name.as_deref(), texts)?;
        self.limits.check_texts(&texts)?;
        Ok(texts)
    }

    /// The default model's facts, once it is ready; not a request of its own (for the routes
    /// that pick what to do by the model's task).
    ///
    /// # Errors
    /// [`EmbedError::Unavailable`] while the default model loads.
    pub async fn served(&self) -> Result<aki_core::ModelInfo> {
        self.model_info(None).await
    }

    /// The facts of the model `requested` (the default when `None`), loading it if needed; not
    /// a request of its own (for routes whose wire options depend on the model's prompts).
    ///
    /// # Errors
    /// [`EmbedError::Unavailable`] while the default model loads, and the store's errors.
    pub async fn model_info(&self, requested: Option<&str>) -> Result<aki_core::ModelInfo> {
        self.model(requested).await.map(|model| model.info().clone())
    }

    /// Facts about the default model and the limits in force.
    ///
    /// # Errors
    /// [`EmbedError::Unavailable`] while the default model loads.
    pub async fn info(&self, route: &str) -> Result<ServerInfo> {
        let started = Instant::now();
        let result =
            within(self.deadline(None, Lane::Interactive, started), self.model(None)).await.map(|model| ServerInfo {
                model: model.info().clone(),
                batching: self.batching,
                max_client_batch_size: self.limits.max_inputs,
                max_concurrent_requests: self.limits.max_concurrent_requests,
                tokenization_workers: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
                models: self.models.clone(),
                version: env!("CARGO_PKG_VERSION"),
            });
        self.finish(route, started, &Tenant::new(UNKNOWN_TENANT, 1), &result, |_| (0, None));
        result
    }

    /// Model ids requests may name, the default first.
    pub fn models(&self, route: &str) -> Vec<String> {
        let finished = Finished {
            route,
            outcome: Outcome::Ok,
            elapsed: Duration::ZERO,
            tokens: 0,
            tenant: UNKNOWN_TENANT,
            queued: None,
        };
        self.observer.finished(&finished);
        self.models.clone()
    }

    /// A place among the requests in flight, held until the request ends; none free means
    /// overloaded, at once.
    pub(crate) fn admit(&self) -> Result<OwnedSemaphorePermit> {
        Arc::clone(&self.in_flight).try_acquire_owned().map_err(|_| {
            EmbedError::Overloaded(format!(
                "{} requests are in flight, the most this server takes at once; retry shortly",
                self.limits.max_concurrent_requests
            ))
        })
    }

    /// A request's deadline in `lane`: the client's, capped by the lane's timeout from
    /// `arrived` (`limits.request_timeout_ms`; bulk: `lanes.bulk_timeout_ms`, not less).
    pub(crate) fn deadline(&self, client: Option<Instant>, lane: Lane, arrived: Instant) -> Instant {
        let timeout = match lane {
            Lane::Interactive => self.limits.request_timeout(),
            Lane::Bulk => self.lanes.bulk_timeout().max(self.limits.request_timeout()),
        };
        let own = arrived + timeout;
        client.map_or(own, |c| c.min(own))
    }

    /// The model `requested` (or the default), once the default one is ready.
    pub(crate) async fn model(&self, requested: Option<&str>) -> Result<LoadedModel> {
        if self.state.load(Ordering::SeqCst) == LOADING {
            return Err(EmbedError::Unavailable("the model is still loading".into()));
        }
        self.store.get_or_load(requested.unwrap_or(&self.default_model)).await
    }

    /// Reports a finished request: `facts` gives a success's tokens and its lane and queue time.
    pub(crate) fn finish<T>(
        &self,
        route: &str,
        started: Instant,
        tenant: &Tenant,
        result: &Result<T>,
        facts: impl Fn(&T) -> (usize, Option<(Lane, Duration)>),
    ) {
        let (outcome, (tokens, queued)) = match result {
            Ok(value) => (Outcome::Ok, facts(value)),
            Err(error) => (Outcome::Failed(error.kind()), (0, None)),
        };
        let elapsed = started.elapsed();
        self.observer.finished(&Finished { route, outcome, elapsed, tokens, tenant: &tenant.name, queued });
    }
}

/// `work`, or [`EmbedError::Timeout`] once `deadline` passes.
pub(crate) async fn within<T>(deadline: Instant, work: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout_at(deadline.into(), work).await.unwrap_or(Err(EmbedError::Timeout))
}

/// `work` (a request's tokenization) in a `tokenize` span of its own, a child of the request's.
pub(crate) fn tokenizing<F: Future>(work: F) -> tracing::instrument::Instrumented<F> {
    tracing::Instrument::instrument(work, tracing::info_span!("tokenize"))
}
