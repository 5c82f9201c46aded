//! Integration tests of `aki-grpc`: every method over a real local connection with tonic's
//! generated client, status mapping, bad input, auth, health, a long stream, parity with
//! the REST server, and trace export of the real binary.

mod calls;
mod connections;
mod families;
mod lanes;
mod parity;
mod parity_tei;
mod shutdown;
mod support;
mod tei;
mod tei_models;
// Shared with aki-rest's trace export test.
#[path = "../../../adapter-rest/tests/integration/trace_tree.rs"]
mod trace_tree;
mod traces;
