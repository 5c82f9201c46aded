//! Integration tests of `aki-batching`: batch shapes with a fake backend, properties with
//! proptest, and the real model through the batcher.

mod fake;
mod properties;
mod real_model;
mod shapes;
