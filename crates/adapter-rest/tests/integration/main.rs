//! Integration tests of `aki-rest`: every route in process (`tower::ServiceExt::oneshot`), the
//! error shapes, and start-up faults, graceful shutdown and trace export of the real binary.

mod cohere;
mod connections;
mod errors;
mod families;
mod lanes;
mod logging;
mod long_inputs;
mod observability;
mod openapi;
mod properties;
mod routes;
mod shutdown;
mod startup;
mod support;
mod tei;
mod tei_models;
mod trace_tree;
mod traces;
