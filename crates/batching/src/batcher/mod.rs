//! `DynamicBatcher`: a cheap `Clone` handle ([`handle`]) in front of a worker task
//! ([`worker`]) that owns the queue, forms batches as soon as the model is free, and routes
//! results back to their callers ([`submission`]), in the shape of tower's `buffer/`.
//!
//! - [`schedule`]: the queue itself: two lanes (interactive first, bulk with a minimum share of
//!   model time), tenants by weight within a lane, the smallest request of a tenant first (its
//!   size discounted by its wait);
//! - [`estimate`]: admission: each lane's measured rate, and the refusal of work that could not
//!   finish before its deadline;
//! - [`handler`]: what a batch runs on ([`BatchHandler`]), how items are costed ([`Costing`]),
//!   and the metrics hooks ([`BatchObserver`]);
//! - [`message`]: what travels from the handle to the worker (queued items, shutdown);
//! - [`run`]: one batch run, with panic isolation and the per-caller retry of a failed shared
//!   batch.

mod estimate;
mod handle;
mod handler;
mod message;
mod run;
mod schedule;
mod submission;
mod worker;

pub use handle::{DynamicBatcher, WeakBatcher};
pub use handler::{BatchHandler, BatchObserver, BatchShape, Costing, NoObserver};
