//! Flaky tests: passed on a retry, passed and failed on one commit, or failing
//! intermittently over the window.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::AnalysisConfig;
use crate::history::{StoredRun, TestStatus, test_id};

/// A test judged flaky, with the evidence.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FlakyTest {
    /// `suite name`.
    pub test: String,
    /// Which rules matched: `passed-on-retry`, `same-commit`, `failure-rate`.
    pub reasons: Vec<&'static str>,
    /// Runs in the window in which it ran.
    pub runs: usize,
    /// Runs in which it failed on every attempt.
    pub failures: usize,
    /// Runs in which it failed and then passed on a retry.
    pub passed_on_retry: usize,
    /// failures / runs.
    pub failure_rate: f64,
    /// Pass/fail flips between consecutive runs divided by the possible flips (0..1);
    /// a steadily failing or steadily passing test scores 0.
    pub transition_score: f64,
}

#[derive(Default)]
struct Tally {
    outcomes: Vec<TestStatus>,
    by_commit: HashMap<String, (bool, bool)>,
}

/// Finds flaky tests in the last `flaky_window` runs, most flaky first.
pub fn detect(runs: &[StoredRun], config: &AnalysisConfig) -> Vec<FlakyTest> {
    let window = &runs[runs.len().saturating_sub(config.flaky_window)..];
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for run in window {
        for t in run.tests.iter().filter(|t| t.status != TestStatus::Skipped) {
            let tally = tallies.entry(test_id(&t.suite, &t.name)).or_default();
            tally.outcomes.push(t.status);
            if let Some(commit) = &run.meta.commit {
                let seen = tally.by_commit.entry(commit.clone()).or_default();
                if t.status.passed() {
                    seen.0 = true;
                } else {
                    seen.1 = true;
                }
            }
        }
    }
    let mut flaky: Vec<FlakyTest> = tallies
        .into_iter()
        .filter_map(|(test, tally)| judge(test, &tally, config))
        .collect();
    flaky.sort_by(|a, b| {
        (b.failures + b.passed_on_retry)
            .cmp(&(a.failures + a.passed_on_retry))
            .then(b.transition_score.total_cmp(&a.transition_score))
            .then(a.test.cmp(&b.test))
    });
    flaky
}

fn judge(test: String, tally: &Tally, config: &AnalysisConfig) -> Option<FlakyTest> {
    let runs = tally.outcomes.len();
    let failures = tally
        .outcomes
        .iter()
        .filter(|s| **s == TestStatus::Failed)
        .count();
    let passed_on_retry = tally
        .outcomes
        .iter()
        .filter(|s| **s == TestStatus::Flaky)
        .count();
    let passes = runs - failures;
    let transitions = tally
        .outcomes
        .windows(2)
        .filter(|w| w[0].passed() != w[1].passed())
        .count();
    let transition_score = if runs > 1 {
        transitions as f64 / (runs - 1) as f64
    } else {
        0.0
    };
    let failure_rate = if runs > 0 {
        failures as f64 / runs as f64
    } else {
        0.0
    };

    let mut reasons = Vec::new();
    if passed_on_retry > 0 {
        reasons.push("passed-on-retry");
    }
    if tally.by_commit.values().any(|&(p, f)| p && f) {
        reasons.push("same-commit");
    }
    if failures > 0
        && passes > 0
        && failure_rate >= config.flaky_failure_rate
        && transitions >= config.flaky_min_transitions
    {
        reasons.push("failure-rate");
    }
    (!reasons.is_empty()).then_some(FlakyTest {
        test,
        reasons,
        runs,
        failures,
        passed_on_retry,
        failure_rate,
        transition_score,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testing::run;
    use TestStatus::{Failed, Flaky, Passed};

    fn names(runs: &[StoredRun]) -> Vec<String> {
        detect(runs, &AnalysisConfig::default())
            .into_iter()
            .map(|f| f.test)
            .collect()
    }

    #[test]
    fn passing_on_a_retry_is_flaky() {
        let runs = [run(1, "c1", &[("a", Flaky, 1.0), ("b", Passed, 1.0)])];
        assert_eq!(names(&runs), ["s a"]);
    }

    #[test]
    fn pass_and_fail_on_one_commit_is_flaky() {
        let runs = [
            run(1, "c1", &[("a", Passed, 1.0)]),
            run(2, "c1", &[("a", Failed, 1.0)]),
        ];
        let f = detect(&runs, &AnalysisConfig::default());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].reasons, ["same-commit"]);
    }

    #[test]
    fn intermittent_failures_across_commits_are_flaky_by_rate() {
        let statuses = [
            Passed, Failed, Passed, Passed, Failed, Passed, Passed, Passed,
        ];
        let runs: Vec<_> = statuses
            .iter()
            .enumerate()
            .map(|(i, &s)| run(i as i64, &format!("c{i}"), &[("a", s, 1.0)]))
            .collect();
        let f = detect(&runs, &AnalysisConfig::default());
        assert_eq!(f[0].reasons, ["failure-rate"]);
        assert!((f[0].transition_score - 4.0 / 7.0).abs() < 1e-9);
    }

    #[test]
    fn a_new_failure_is_not_flaky() {
        let runs: Vec<_> = (0..6)
            .map(|i| {
                let s = if i == 5 { Failed } else { Passed };
                run(i, &format!("c{i}"), &[("a", s, 1.0)])
            })
            .collect();
        assert!(names(&runs).is_empty());
    }

    #[test]
    fn a_steadily_failing_test_is_not_flaky() {
        let runs: Vec<_> = (0..4)
            .map(|i| run(i, &format!("c{i}"), &[("a", Failed, 1.0)]))
            .collect();
        assert!(names(&runs).is_empty());
    }
}
