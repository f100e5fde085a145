//! Benchmark regressions from confidence intervals.
//!
//! A change counts only when the whole interval of the ratio clears the noise
//! threshold. The interval is taken conservatively: the lowest plausible ratio is the
//! new lower bound over the old upper bound, the highest is the new upper bound over
//! the old lower bound. A benchmark whose intervals overlap within the threshold is
//! unchanged however its point estimate moved, which is what keeps one noisy run from
//! raising an alarm (github-action-benchmark compares points and needs 200 % to be safe).

use std::collections::BTreeMap;

use serde::Serialize;

use super::AnalysisConfig;
use crate::history::{BenchRecord, StoredRun};

/// A benchmark's change between its two latest runs in one environment.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BenchChange {
    /// Benchmark id.
    pub name: String,
    /// Environment, short form.
    pub environment: String,
    /// Unit of the estimates.
    pub unit: String,
    /// Baseline point estimate and interval.
    pub baseline: [f64; 3],
    /// Current point estimate and interval.
    pub current: [f64; 3],
    /// Point change, as a fraction (0.3 = 30 % slower).
    pub change: f64,
    /// Lowest plausible change.
    pub change_lower: f64,
    /// Highest plausible change.
    pub change_upper: f64,
    /// Run key of the current measurement.
    pub run: String,
}

/// Regressions and improvements, each sorted by name.
pub fn changes(
    runs: &[StoredRun],
    config: &AnalysisConfig,
) -> (Vec<BenchChange>, Vec<BenchChange>) {
    // (environment key, bench name) -> measurements oldest first.
    let mut series: BTreeMap<(String, String), Vec<(&StoredRun, &BenchRecord)>> = BTreeMap::new();
    for run in runs {
        for b in &run.benches {
            series
                .entry((run.meta.environment.key(), b.name.clone()))
                .or_default()
                .push((run, b));
        }
    }
    let mut regressions = Vec::new();
    let mut improvements = Vec::new();
    for points in series.values() {
        let [.., (_, base), (run, cur)] = points.as_slice() else {
            continue;
        };
        let Some(change) = compare(base, cur) else {
            continue;
        };
        let change = BenchChange {
            run: run.meta.key.clone(),
            environment: run.meta.environment.short(),
            ..change
        };
        if change.change_lower > config.bench_noise_threshold {
            regressions.push(change);
        } else if change.change_upper < -config.bench_noise_threshold {
            improvements.push(change);
        }
    }
    (regressions, improvements)
}

/// The change from `base` to `cur`; `None` when the baseline is zero (nothing to divide by).
pub fn compare(base: &BenchRecord, cur: &BenchRecord) -> Option<BenchChange> {
    if base.lower <= 0.0 || base.estimate <= 0.0 {
        return None;
    }
    Some(BenchChange {
        name: cur.name.clone(),
        environment: String::new(),
        unit: cur.unit.clone(),
        baseline: [base.lower, base.estimate, base.upper],
        current: [cur.lower, cur.estimate, cur.upper],
        change: cur.estimate / base.estimate - 1.0,
        change_lower: cur.lower / base.upper - 1.0,
        change_upper: cur.upper / base.lower - 1.0,
        run: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testing::{bench, run};

    fn two_runs(before: BenchRecord, after: BenchRecord) -> Vec<StoredRun> {
        let mut a = run(1, "c1", &[]);
        a.benches.push(before);
        let mut b = run(2, "c2", &[]);
        b.benches.push(after);
        vec![a, b]
    }

    #[rstest::rstest]
    #[case::thirty_percent_slower_is_a_regression(100.0, 2.0, 130.0, 2.0, Some(true))]
    #[case::ten_percent_faster_is_an_improvement(100.0, 1.0, 90.0, 1.0, Some(false))]
    #[case::change_inside_noise_is_nothing(100.0, 1.0, 103.0, 1.0, None)]
    #[case::wide_interval_hides_a_point_move(100.0, 10.0, 112.0, 10.0, None)]
    fn interval_rule(
        #[case] base: f64,
        #[case] base_hw: f64,
        #[case] cur: f64,
        #[case] cur_hw: f64,
        #[case] regression: Option<bool>,
    ) {
        let runs = two_runs(bench("b", base, base_hw), bench("b", cur, cur_hw));
        let (reg, imp) = changes(&runs, &AnalysisConfig::default());
        match regression {
            Some(true) => assert!(reg.len() == 1 && imp.is_empty()),
            Some(false) => assert!(reg.is_empty() && imp.len() == 1),
            None => assert!(reg.is_empty() && imp.is_empty(), "{reg:?} {imp:?}"),
        }
    }

    #[test]
    fn different_environments_are_not_compared() {
        let mut runs = two_runs(bench("b", 100.0, 1.0), bench("b", 200.0, 1.0));
        runs[1].meta.environment = crate::analysis::testing::env("github-actions");
        let (reg, _) = changes(&runs, &AnalysisConfig::default());
        assert!(reg.is_empty());
    }
}
