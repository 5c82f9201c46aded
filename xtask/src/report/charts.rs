//! The two charts of `docs/benchmarks.md`: the short scenarios run as fast as answered,
//! requests/s and p95 latency against connections, each with its target line.

use aki_bench_report::{LoadField, load_spread};

use super::figures::Rendered;

/// Which figure a chart plots.
#[derive(Clone, Copy)]
pub enum Metric {
    Throughput,
    P95,
}

impl Rendered<'_> {
    /// A line chart of the short scenarios run as fast as answered, against connections.
    pub fn chart(&self, metric: Metric) -> String {
        let field = match metric {
            Metric::Throughput => LoadField::RequestsPerS,
            Metric::P95 => LoadField::P95,
        };
        let points: Vec<(f64, f64, f64, f64)> = self
            .report
            .scenarios()
            .iter()
            .filter(|r| r.first().is_some_and(|o| o.scenario.starts_with("short") && o.offered_rate.is_none()))
            .map(|r| {
                let (median, low, high) = load_spread(r, |o| field.of(o));
                (f64::from(r[0].connections), median, low, high)
            })
            .collect();
        let (title, unit, target) = match metric {
            Metric::Throughput => ("Requests/s against concurrent connections (short texts)", "requests/s", 200.0),
            Metric::P95 => ("p95 latency against concurrent connections (short texts)", "ms", 35.0),
        };
        super::svg::line_chart(title, "connections", unit, &points, target)
    }
}
