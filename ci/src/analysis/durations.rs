//! Test-duration regressions: recent runs against a baseline window, within one
//! environment fingerprint, judged by a rank test.

use std::collections::BTreeMap;

use serde::Serialize;

use super::AnalysisConfig;
use super::rank_test::mann_whitney_greater;
use crate::history::{StoredRun, TestStatus, test_id};

/// A test whose recent durations are significantly longer than its baseline's.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DurationRegression {
    /// `suite name`.
    pub test: String,
    /// Environment, short form.
    pub environment: String,
    /// Median of the baseline window.
    pub baseline_median_ms: f64,
    /// Median of the recent window.
    pub recent_median_ms: f64,
    /// recent / baseline - 1.
    pub change: f64,
    /// One-sided Mann-Whitney p-value.
    pub p_value: f64,
    /// Samples on each side.
    pub samples: [usize; 2],
}

/// Duration regressions, sorted by test then environment.
pub fn regressions(runs: &[StoredRun], config: &AnalysisConfig) -> Vec<DurationRegression> {
    let mut series: BTreeMap<(String, String), (String, Vec<f64>)> = BTreeMap::new();
    for run in runs {
        for t in run.tests.iter().filter(|t| t.status == TestStatus::Passed) {
            series
                .entry((test_id(&t.suite, &t.name), run.meta.environment.key()))
                .or_insert_with(|| (run.meta.environment.short(), Vec::new()))
                .1
                .push(t.duration_ms);
        }
    }
    let floor_ms = config.duration_floor.as_secs_f64() * 1000.0;
    let mut found = Vec::new();
    for ((test, _), (environment, durations)) in series {
        let recent_start = durations.len().saturating_sub(config.duration_recent_runs);
        let (before, recent) = durations.split_at(recent_start);
        let baseline = &before[before.len().saturating_sub(config.duration_baseline_runs)..];
        if recent.len() < config.duration_min_samples
            || baseline.len() < config.duration_min_samples
        {
            continue;
        }
        let (base_median, recent_median) = (median(baseline), median(recent));
        if recent_median < floor_ms || base_median <= 0.0 {
            continue;
        }
        let change = recent_median / base_median - 1.0;
        if change < config.duration_min_slowdown {
            continue;
        }
        let p_value = mann_whitney_greater(recent, baseline);
        if p_value < config.duration_alpha {
            found.push(DurationRegression {
                test,
                environment,
                baseline_median_ms: base_median,
                recent_median_ms: recent_median,
                change,
                p_value,
                samples: [baseline.len(), recent.len()],
            });
        }
    }
    found
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testing::run;

    fn runs_with(durations: &[f64]) -> Vec<StoredRun> {
        durations
            .iter()
            .enumerate()
            .map(|(i, &d)| run(i as i64, &format!("c{i}"), &[("t", TestStatus::Passed, d)]))
            .collect()
    }

    #[test]
    fn sustained_slowdown_is_a_regression() {
        let mut d = vec![100.0, 104.0, 98.0, 101.0, 99.0, 103.0, 97.0, 102.0];
        d.extend([150.0, 148.0, 155.0, 152.0, 149.0]);
        let found = regressions(&runs_with(&d), &AnalysisConfig::default());
        assert_eq!(found.len(), 1);
        assert!(found[0].change > 0.4);
    }

    #[test]
    fn one_slow_outlier_is_not_a_regression() {
        let mut d = vec![100.0, 104.0, 98.0, 101.0, 99.0, 103.0, 97.0, 102.0];
        d.extend([100.0, 400.0, 99.0, 101.0, 102.0]);
        assert!(regressions(&runs_with(&d), &AnalysisConfig::default()).is_empty());
    }

    #[test]
    fn too_few_samples_are_not_judged() {
        let d = [100.0, 100.0, 100.0, 200.0, 200.0, 200.0];
        assert!(regressions(&runs_with(&d), &AnalysisConfig::default()).is_empty());
    }

    #[test]
    fn tests_below_the_floor_are_ignored() {
        let mut d = vec![1.0; 8];
        d.extend([5.0; 5]);
        assert!(regressions(&runs_with(&d), &AnalysisConfig::default()).is_empty());
    }
}
