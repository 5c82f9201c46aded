//! The application service of aki-embed: the one place both servers call (the role TEI's
//! `Infer` plays). [`EmbedService`] owns what every request goes through whatever its wire
//! format: the API key, input limits, model resolution, the deadline, text and token-id inputs
//! (through the one pipeline of `aki_core::EmbeddingProvider`), usage and timing, and the
//! request metrics (through [`RequestObserver`]). Adapters map wire DTOs to [`EmbedRequest`] and
//! back, and core errors to their statuses; nothing else.

mod auth;
mod limits;
mod service;

pub use auth::ApiKey;
pub use limits::Limits;
pub use service::{
    BatchFacts, EmbedReply, EmbedRequest, EmbedService, Inputs, NoRequestObserver, Outcome, PromptChoice, Ranked,
    RequestObserver, RerankReply, RerankRequest, ServerInfo, TokenizeRequest,
};
