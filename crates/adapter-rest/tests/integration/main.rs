//! Integration tests of `aki-rest`: every route in process (`tower::ServiceExt::oneshot`), the
//! error shapes, and graceful shutdown of the real binary.

mod errors;
mod routes;
mod shutdown;
mod support;
