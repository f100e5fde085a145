//! What the history says: flaky tests, failures, and regressions.
//!
//! Everything here is a pure function of the runs read from history and the
//! `[analysis]` thresholds, so it is tested on hand-built runs without a database.

mod benches;
pub mod config;
mod durations;
mod failures;
mod flaky;
pub mod rank_test;

use serde::Serialize;

use crate::history::{StoredRun, TestStatus};

pub use benches::{BenchChange, compare as compare_bench};
pub use config::AnalysisConfig;
pub use durations::DurationRegression;
pub use failures::Failure;
pub use flaky::FlakyTest;

/// The full analysis, as `gauntlet dashboard --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Runs analysed.
    pub runs: usize,
    /// The most recent run, summarised.
    pub latest: Option<RunSummary>,
    /// Flaky tests, most flaky first.
    pub flaky: Vec<FlakyTest>,
    /// Tests failing in the latest run.
    pub failures: Vec<Failure>,
    /// Benchmarks and test durations that got slower.
    pub regressions: Vec<Regression>,
    /// Benchmarks that got faster beyond the noise threshold.
    pub improvements: Vec<BenchChange>,
    /// The benchmark noise threshold used, as a fraction.
    pub noise_threshold: f64,
}

/// Counts for one run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunSummary {
    /// Run key.
    pub key: String,
    /// Commit.
    pub commit: Option<String>,
    /// Environment, short form.
    pub environment: String,
    /// Passed on the first attempt.
    pub passed: usize,
    /// Failed on every attempt.
    pub failed: usize,
    /// Passed on a retry.
    pub flaky: usize,
    /// Skipped, with reasons.
    pub skipped: Vec<SkippedTest>,
    /// The slowest tests of the run, slowest first.
    pub slowest: Vec<SlowTest>,
    /// Benchmarks recorded.
    pub benchmarks: usize,
}

/// A skipped test and why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SkippedTest {
    /// `suite name`.
    pub test: String,
    /// Reason given.
    pub reason: String,
}

/// One of the slowest tests.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SlowTest {
    /// `suite name`.
    pub test: String,
    /// Duration of the final attempt.
    pub duration_ms: f64,
}

/// Something that got slower.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Regression {
    /// A benchmark's confidence interval moved up beyond the noise threshold.
    Benchmark(BenchChange),
    /// A test's recent durations rank above its baseline.
    Duration(DurationRegression),
}

impl Regression {
    /// The benchmark or test name.
    pub fn name(&self) -> &str {
        match self {
            Regression::Benchmark(b) => &b.name,
            Regression::Duration(d) => &d.test,
        }
    }
}

/// How many slowest tests a run summary lists.
const SLOWEST: usize = 10;

/// Analyses `runs` (oldest first).
pub fn analyze(runs: &[StoredRun], config: &AnalysisConfig) -> Report {
    let (bench_regressions, improvements) = benches::changes(runs, config);
    let mut regressions: Vec<Regression> = bench_regressions
        .into_iter()
        .map(Regression::Benchmark)
        .collect();
    regressions.extend(
        durations::regressions(runs, config)
            .into_iter()
            .map(Regression::Duration),
    );
    Report {
        runs: runs.len(),
        latest: latest_with_tests(runs).map(summarize),
        flaky: flaky::detect(runs, config),
        failures: failures::detect(runs),
        regressions,
        improvements,
        noise_threshold: config.bench_noise_threshold,
    }
}

/// The most recent run that recorded tests (a benchmark-only run says nothing about
/// them), or the most recent run when none did.
pub fn latest_with_tests(runs: &[StoredRun]) -> Option<&StoredRun> {
    runs.iter()
        .rev()
        .find(|r| !r.tests.is_empty())
        .or(runs.last())
}

/// Counts one run's outcomes.
pub fn summarize(run: &StoredRun) -> RunSummary {
    let count = |s: TestStatus| run.tests.iter().filter(|t| t.status == s).count();
    let mut slowest: Vec<SlowTest> = run
        .tests
        .iter()
        .filter(|t| t.status != TestStatus::Skipped)
        .map(|t| SlowTest {
            test: t.id(),
            duration_ms: t.duration_ms,
        })
        .collect();
    slowest.sort_by(|a, b| b.duration_ms.total_cmp(&a.duration_ms));
    slowest.truncate(SLOWEST);
    RunSummary {
        key: run.meta.key.clone(),
        commit: run.meta.commit.clone(),
        environment: run.meta.environment.short(),
        passed: count(TestStatus::Passed),
        failed: count(TestStatus::Failed),
        flaky: count(TestStatus::Flaky),
        skipped: run
            .tests
            .iter()
            .filter(|t| t.status == TestStatus::Skipped)
            .map(|t| SkippedTest {
                test: t.id(),
                reason: t
                    .skip_reason
                    .clone()
                    .unwrap_or_else(|| "no reason given".to_owned()),
            })
            .collect(),
        slowest,
        benchmarks: run.benches.len(),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Hand-built runs for the analysis tests.
    use crate::history::{
        BenchRecord, BenchSource, Fingerprint, RunMeta, StoredRun, TestRecord, TestStatus,
    };

    pub fn env(label: &str) -> Fingerprint {
        Fingerprint {
            label: label.to_owned(),
            cpu_model: "cpu".to_owned(),
            cores: 2,
            os: "os".to_owned(),
            arch: "x86_64".to_owned(),
            toolchain: "rustc".to_owned(),
        }
    }

    pub fn run(id: i64, commit: &str, tests: &[(&str, TestStatus, f64)]) -> StoredRun {
        StoredRun {
            id,
            meta: RunMeta {
                key: format!("run-{id}"),
                commit: Some(commit.to_owned()),
                branch: None,
                profile: None,
                environment: env("local"),
                started_at: None,
                duration_ms: None,
            },
            shards: 1,
            tests: tests
                .iter()
                .map(|&(name, status, ms)| TestRecord {
                    suite: "s".to_owned(),
                    name: name.to_owned(),
                    status,
                    duration_ms: ms,
                    attempts: if status == TestStatus::Flaky { 2 } else { 1 },
                    skip_reason: None,
                    message: None,
                })
                .collect(),
            benches: Vec::new(),
        }
    }

    pub fn bench(name: &str, estimate: f64, half_width: f64) -> BenchRecord {
        BenchRecord {
            name: name.to_owned(),
            source: BenchSource::Criterion,
            unit: "ns".to_owned(),
            estimate,
            lower: estimate - half_width,
            upper: estimate + half_width,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::TestStatus::{Failed, Passed};

    #[test]
    fn a_benchmark_only_run_does_not_blank_the_summary() {
        let mut bench_only = testing::run(2, "c2", &[]);
        bench_only.benches.push(testing::bench("b", 1.0, 0.1));
        let runs = [
            testing::run(1, "c1", &[("a", Passed, 1.0), ("b", Failed, 2.0)]),
            bench_only,
        ];
        let report = analyze(&runs, &AnalysisConfig::default());
        let latest = report.latest.unwrap();
        assert_eq!(
            (latest.passed, latest.failed, latest.key.as_str()),
            (1, 1, "run-1")
        );
    }
}
