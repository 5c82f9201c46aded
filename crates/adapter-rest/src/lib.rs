//! The REST adapter of aki-embed (binary `aki-rest`), on axum: the native route, OpenAI- and
//! TEI-compatible routes, health, readiness, Prometheus metrics and the OpenAPI document.
//! The only crate that knows HTTP and these JSON wire formats; it owns its DTOs and converts
//! them by hand into domain values.

mod dto;
mod error;
mod openapi;
mod routes;
mod server;

pub use error::{Shape, status_of};
pub use routes::{AppState, app};
pub use server::{run, serve};
