//! `docs/benchmarks.md` and its charts, rendered from a [`Report`](aki_bench_report::Report),
//! one job per file:
//! - `targets.rs`: the targets as a table of data, what each measures and the bound it must meet;
//! - `markdown.rs`: the prose and tables of `benchmarks.md`;
//! - `precisions.rs`: its section on lower precisions, ours and the peer's;
//! - `charts.rs`: what the two charts plot, drawn by `svg.rs`;
//! - `figures.rs`: the report with what it does not hold, and the figures the others share;
//! - `files.rs`: what is read (the model's configuration, the GPU figures) and written.
//!
//! Medians, spreads and a scenario's rounds are the report crate's (`aki_bench_report::spread`).

mod charts;
mod figures;
mod files;
mod markdown;
mod precisions;
mod svg;
mod targets;

pub use files::{rerender, write};
