//! What a report's repeated figures come to: the median and spread of repeats, a load
//! scenario's outcome in every round, one figure of an outcome. Pure functions of the file
//! types, for whatever renders a report.

use crate::{LoadOutcome, Report, ThroughputRun};

/// Median, lowest and highest of a figure's repeats.
pub type Spread = (f64, f64, f64);

/// Median, lowest and highest of the finite `values` (NaN when there are none).
pub fn spread(values: &[f64]) -> Spread {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => (f64::NAN, f64::NAN, f64::NAN),
        n => {
            let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
            (median, sorted[0], sorted[n - 1])
        }
    }
}

/// The spread of one figure over outcomes (a scenario's rounds).
pub fn load_spread(outcomes: &[&LoadOutcome], field: impl Fn(&LoadOutcome) -> f64) -> Spread {
    spread(&outcomes.iter().map(|o| field(o)).collect::<Vec<_>>())
}

/// A figure of a load outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadField {
    /// [`LoadOutcome::requests_per_s`].
    RequestsPerS,
    /// [`LoadOutcome::p50_ms`].
    P50,
    /// [`LoadOutcome::p95_ms`].
    P95,
    /// [`LoadOutcome::p99_ms`].
    P99,
}

impl LoadField {
    /// This figure of `outcome`.
    pub fn of(self, outcome: &LoadOutcome) -> f64 {
        match self {
            Self::RequestsPerS => outcome.requests_per_s,
            Self::P50 => outcome.p50_ms,
            Self::P95 => outcome.p95_ms,
            Self::P99 => outcome.p99_ms,
        }
    }
}

impl ThroughputRun {
    /// The spread of sentences/s for `corpus` at `batch`.
    pub fn rate(&self, corpus: &str, batch: usize) -> Option<Spread> {
        self.row(corpus, batch).map(|r| spread(&r.sentences_per_s))
    }
}

impl Report {
    /// Every load round's outcome of `scenario`, in round order (rounds without it skipped).
    pub fn rounds_of(&self, scenario: &str) -> Vec<&LoadOutcome> {
        self.load_rounds.iter().filter_map(|round| round.iter().find(|o| o.scenario == scenario)).collect()
    }

    /// The scenarios in the first round's order, each with every round's outcome.
    pub fn scenarios(&self) -> Vec<Vec<&LoadOutcome>> {
        let first = self.load_rounds.first().map(Vec::as_slice).unwrap_or_default();
        first.iter().map(|o| self.rounds_of(&o.scenario)).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::Machine;

    #[test]
    fn spread_is_median_lowest_highest() {
        assert_eq!(spread(&[3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(spread(&[4.0, 1.0, 2.0, 3.0]), (2.5, 1.0, 4.0));
        assert_eq!(spread(&[f64::NAN, 1.0, f64::INFINITY]), (1.0, 1.0, 1.0));
        assert!(spread(&[]).0.is_nan());
    }

    fn outcome(scenario: &str, requests_per_s: f64) -> LoadOutcome {
        LoadOutcome {
            scenario: scenario.into(),
            connections: 1,
            seconds: 1,
            offered_rate: None,
            requests_per_s,
            p50_ms: 1.0,
            p95_ms: 2.0,
            p99_ms: 3.0,
            non_2xx: 0,
            socket_errors: 0,
            peak_rss_mib: 1.0,
            cpu_cores: 1.0,
        }
    }

    #[test]
    fn scenarios_keep_the_first_rounds_order_with_every_rounds_outcome() {
        let report = Report {
            machine: Machine {
                cpu: String::new(),
                isa: Vec::new(),
                cores: 1,
                memory_gib: 1.0,
                kernel: String::new(),
                rustc: String::new(),
                commit: String::new(),
                date: String::new(),
            },
            quick: true,
            repeat: 2,
            throughput: BTreeMap::new(),
            peers: BTreeMap::new(),
            load_rounds: vec![vec![outcome("b", 1.0), outcome("a", 2.0)], vec![outcome("a", 4.0)]],
            mixed_rounds: Vec::new(),
            padding: Vec::new(),
            criterion: Vec::new(),
        };
        let rates: Vec<Vec<f64>> =
            report.scenarios().iter().map(|r| r.iter().map(|o| LoadField::RequestsPerS.of(o)).collect()).collect();
        assert_eq!(rates, [vec![1.0], vec![2.0, 4.0]]);
        assert_eq!(load_spread(&report.rounds_of("a"), |o| o.requests_per_s), (3.0, 2.0, 4.0));
        assert!(report.rounds_of("c").is_empty());
    }
}
