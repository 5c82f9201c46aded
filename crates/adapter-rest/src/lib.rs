//! The REST adapter of aki-embed (binary `aki-rest`), on axum: one module per API family (the
//! native route, OpenAI's, TEI's and Cohere's, and operations: info, health, readiness, metrics
//! and the OpenAPI document generated from the wire types). The only crate that knows HTTP and
//! these JSON wire formats; it owns its DTOs and converts them by hand into domain values.

mod app;
mod cohere;
mod connection;
mod failure;
mod family;
mod native;
mod openai;
mod openapi;
mod ops;
mod quantized;
mod server;
mod tei;

pub use app::{AppState, app};
pub use failure::{failure_level, status_of};
pub use server::{run, serve};
