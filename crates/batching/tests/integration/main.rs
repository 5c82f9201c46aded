//! Integration tests of `aki-batching`: batch shapes with a fake backend, properties with
//! proptest, fault injection through the batching provider, and the real model through the
//! batcher (the caller's span across the queue is `tests/spans.rs`, a binary of its own).

mod fake;
mod faults;
mod lanes;
mod properties;
mod real_model;
mod shapes;
