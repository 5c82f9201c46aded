//! Integration tests of `aki-batching`: batch shapes with a fake backend, properties with
//! proptest, fault injection through the batching provider, the caller's span across the
//! queue, and the real model through the batcher.

mod fake;
mod faults;
mod properties;
mod real_model;
mod shapes;
mod spans;
