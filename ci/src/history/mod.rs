//! Test and benchmark history kept in SQLite.
//!
//! One database (default `target/gauntlet/history.sqlite`, or `--db`, or `GAUNTLET_DB`)
//! holds every run: its commit, branch, profile and environment fingerprint, each
//! test's outcome from nextest's JUnit and each benchmark's estimate with its
//! confidence interval. Shards of one CI run are recorded under the same run key and
//! merge into one run, so analysis never sees half a run.

pub mod bench_json;
pub mod criterion;
pub mod environment;
pub mod junit;
pub mod label;
pub mod libtest;
mod schema;
mod store;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use environment::Fingerprint;
pub use store::{History, RecordSummary, RunMeta, StoredRun};

/// Environment variable naming the history database.
pub const DB_ENV: &str = "GAUNTLET_DB";

/// The outcome of one test in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TestStatus {
    /// Passed on the first attempt.
    Passed,
    /// Failed on every attempt.
    Failed,
    /// Failed, then passed on a retry.
    Flaky,
    /// Did not run here (ignored, or printed `SKIP <reason>`).
    Skipped,
}

impl TestStatus {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            TestStatus::Passed => "passed",
            TestStatus::Failed => "failed",
            TestStatus::Flaky => "flaky",
            TestStatus::Skipped => "skipped",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<TestStatus> {
        Some(match s {
            "passed" => TestStatus::Passed,
            "failed" => TestStatus::Failed,
            "flaky" => TestStatus::Flaky,
            "skipped" => TestStatus::Skipped,
            _ => return None,
        })
    }

    /// Whether the test finally passed (first try or on a retry).
    pub fn passed(self) -> bool {
        matches!(self, TestStatus::Passed | TestStatus::Flaky)
    }
}

/// One test's result as read from JUnit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestRecord {
    /// Test binary (nextest's `testsuite` name).
    pub suite: String,
    /// Test name within the binary.
    pub name: String,
    /// Outcome.
    pub status: TestStatus,
    /// Duration of the final attempt in milliseconds.
    pub duration_ms: f64,
    /// How many times it ran.
    pub attempts: u32,
    /// Why it was skipped.
    pub skip_reason: Option<String>,
    /// First failure message.
    pub message: Option<String>,
}

impl TestRecord {
    /// `suite name`, the way nextest prints a test.
    pub fn id(&self) -> String {
        test_id(&self.suite, &self.name)
    }
}

/// `suite name`, the way nextest prints a test.
pub fn test_id(suite: &str, name: &str) -> String {
    format!("{suite} {name}")
}

/// Where a benchmark number came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BenchSource {
    /// criterion's `estimates.json`.
    Criterion,
    /// `gauntlet bench --json`.
    GauntletBench,
}

impl BenchSource {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            BenchSource::Criterion => "criterion",
            BenchSource::GauntletBench => "gauntlet-bench",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<BenchSource> {
        match s {
            "criterion" => Some(BenchSource::Criterion),
            "gauntlet-bench" => Some(BenchSource::GauntletBench),
            _ => None,
        }
    }
}

/// One benchmark's estimate in one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchRecord {
    /// Benchmark id (criterion's `full_id`).
    pub name: String,
    /// Where it came from.
    pub source: BenchSource,
    /// Unit of the three numbers (always `ns` per iteration today).
    pub unit: String,
    /// Point estimate.
    pub estimate: f64,
    /// Lower bound of the confidence interval.
    pub lower: f64,
    /// Upper bound of the confidence interval.
    pub upper: f64,
}

/// Anything that can go wrong reading or writing history.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The database could not be opened or created.
    #[error("{path}: cannot open the history database: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The database directory could not be created.
    #[error("{path}: cannot create the directory for the history database: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The database was written by a newer gauntlet.
    #[error(
        "{path}: schema version {found} is newer than this gauntlet understands ({supported}); upgrade gauntlet or use another --db"
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// Version found in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// A query failed.
    #[error("history database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A stored value is not one this gauntlet writes.
    #[error("history database: {0}; the file may be damaged, move it aside to start afresh")]
    Corrupt(String),
}

/// The database path: `--db`, else `$GAUNTLET_DB`, else `<target dir>/gauntlet/history.sqlite`.
pub fn default_db_path(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_owned();
    }
    if let Some(p) = std::env::var_os(DB_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    target_dir().join("gauntlet").join("history.sqlite")
}

/// `CARGO_TARGET_DIR` if set, else `target` in the current directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
}
