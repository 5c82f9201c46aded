//! The OpenAPI 3.1 description of the routes, served at `/openapi.json`; a test checks that it
//! lists every route the router serves.

/// The document, kept beside this file.
pub const DOCUMENT: &str = include_str!("openapi.json");
