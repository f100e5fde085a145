//! Tests failing in the latest run, and whether the failure is new.

use serde::Serialize;

use crate::history::{StoredRun, TestStatus};

/// A test that failed on every attempt in the latest run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Failure {
    /// `suite name`.
    pub test: String,
    /// True when the previous run that ran it passed it, or no earlier run ran it.
    pub new: bool,
    /// Consecutive runs, ending with the latest, in which it failed.
    pub consecutive: usize,
    /// Attempts in the latest run.
    pub attempts: u32,
    /// The failure message nextest recorded.
    pub message: Option<String>,
}

/// Failures of the latest run, sorted by name.
/// Runs that recorded only benchmarks say nothing about tests and are skipped.
pub fn detect(runs: &[StoredRun]) -> Vec<Failure> {
    let with_tests: Vec<&StoredRun> = runs.iter().filter(|r| !r.tests.is_empty()).collect();
    let Some((latest, earlier)) = with_tests.split_last() else {
        return Vec::new();
    };
    latest
        .tests
        .iter()
        .filter(|t| t.status == TestStatus::Failed)
        .map(|t| {
            let history = earlier.iter().rev().filter_map(|r| {
                r.tests.iter().find(|p| {
                    p.suite == t.suite && p.name == t.name && p.status != TestStatus::Skipped
                })
            });
            let mut consecutive = 1;
            let mut new = true;
            for (i, past) in history.enumerate() {
                if past.status == TestStatus::Failed {
                    consecutive += 1;
                    if i == 0 {
                        new = false;
                    }
                } else {
                    break;
                }
            }
            Failure {
                test: t.id(),
                new,
                consecutive,
                attempts: t.attempts,
                message: t.message.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testing::run;
    use TestStatus::{Failed, Passed};

    #[test]
    fn failure_after_a_pass_is_new() {
        let runs = [
            run(1, "a", &[("t", Passed, 1.0)]),
            run(2, "b", &[("t", Failed, 1.0)]),
        ];
        let f = detect(&runs);
        assert_eq!(f.len(), 1);
        assert!(f[0].new);
        assert_eq!(f[0].consecutive, 1);
    }

    #[test]
    fn repeated_failure_is_not_new_and_counts_its_streak() {
        let runs = [
            run(1, "a", &[("t", Passed, 1.0)]),
            run(2, "b", &[("t", Failed, 1.0)]),
            run(3, "c", &[("t", Failed, 1.0)]),
        ];
        let f = detect(&runs);
        assert!(!f[0].new);
        assert_eq!(f[0].consecutive, 2);
    }

    #[test]
    fn a_benchmark_only_run_does_not_hide_failures() {
        let runs = [run(1, "a", &[("t", Failed, 1.0)]), run(2, "b", &[])];
        assert_eq!(detect(&runs).len(), 1);
    }

    #[test]
    fn passing_latest_run_has_no_failures() {
        let runs = [
            run(1, "a", &[("t", Failed, 1.0)]),
            run(2, "b", &[("t", Passed, 1.0)]),
        ];
        assert!(detect(&runs).is_empty());
    }
}
