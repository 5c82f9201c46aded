//! Integration tests of `aki-cache`: the model store (single loads, failures, bounds, pinning,
//! allowed ids) and the result cache decorator.

mod fakes;
mod result_cache;
mod store;
