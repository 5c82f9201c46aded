//! The application service of aki-embed: the one place both servers call. [`EmbedService`]
//! owns what every request goes through whatever its wire format: the API key and its tenant
//! ([`Tenants`]), admission, input limits, model resolution, the lane ([`LanePolicy`]) and the
//! tenant's token rate once the request's tokens are known, the deadline (computed here, once),
//! usage and timing, and the request metrics (through [`RequestObserver`]); the model's own steps (prompt, tokenize,
//! check, infer, finish) are its `aki_core::ModelPipeline`. Adapters map wire DTOs to the
//! [`requests`](EmbedRequest) and back, and core errors to their statuses; nothing else.

mod auth;
mod classify;
mod embeddings;
mod lanes;
mod limits;
mod observer;
mod requests;
mod service;
mod tenants;
mod tokens;

pub use auth::ApiKey;
pub use lanes::{LanePolicy, Requester};
pub use limits::Limits;
pub use observer::{Finished, NoRequestObserver, Outcome, RequestObserver};
pub use requests::{
    BatchFacts, Caller, DecodeRequest, EmbedReply, EmbedRequest, Inputs, PredictReply, PredictRequest, Prediction,
    PromptChoice, Ranked, RerankReply, RerankRequest, ServerInfo, SimilarityReply, SimilarityRequest, TokenizeRequest,
};
pub use service::EmbedService;
pub use tenants::{TenantKey, Tenants};
