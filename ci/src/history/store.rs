//! Writing runs into the database and reading them back for analysis.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, Statement, params};
use serde::Serialize;

use super::{BenchRecord, BenchSource, Fingerprint, HistoryError, TestRecord, TestStatus, schema};

/// How long a writer waits for another process's lock (parallel shards recording
/// into one file) before giving up with SQLITE_BUSY.
const BUSY_DEADLINE: Duration = Duration::from_secs(30);

/// What identifies and describes a run: given when recording, read back in [`StoredRun`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunMeta {
    /// Run key: shards recorded with the same key merge into one run.
    pub key: String,
    /// Commit SHA.
    pub commit: Option<String>,
    /// Branch name.
    pub branch: Option<String>,
    /// nextest profile.
    pub profile: Option<String>,
    /// Where it ran.
    pub environment: Fingerprint,
    /// Start time (RFC 3339).
    pub started_at: Option<String>,
    /// Wall time in milliseconds.
    pub duration_ms: Option<f64>,
}

/// What one `record` call did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordSummary {
    /// Database id of the run.
    pub run_id: i64,
    /// Run key.
    pub key: String,
    /// Whether an earlier shard of the same run was already there.
    pub merged: bool,
    /// Test results written.
    pub tests: usize,
    /// Benchmark results written.
    pub benches: usize,
}

/// A run read back from the database, with all its results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredRun {
    /// Database id; ids grow with recording order.
    pub id: i64,
    /// Key, commit, branch, profile, environment, start and wall time.
    #[serde(flatten)]
    pub meta: RunMeta,
    /// How many shards were recorded into it.
    pub shards: i64,
    /// Test results, sorted by suite and name.
    pub tests: Vec<TestRecord>,
    /// Benchmark results, sorted by name.
    pub benches: Vec<BenchRecord>,
}

/// An open history database.
pub struct History {
    conn: Connection,
}

impl History {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<History, HistoryError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| HistoryError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let open_err = |source| HistoryError::Open {
            path: path.to_owned(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_DEADLINE).map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_err)?;
        // A file that is not SQLite fails here, on the first read, with SQLite's
        // "file is not a database": report it against the path.
        schema::migrate(&mut conn, path).map_err(|e| match e {
            HistoryError::Sql(source) => open_err(source),
            other => other,
        })?;
        Ok(History { conn })
    }

    /// Records results under `meta.key`, merging into the run if it exists. Recording
    /// the same file twice replaces its rows rather than doubling them.
    pub fn record(
        &mut self,
        meta: &RunMeta,
        tests: &[TestRecord],
        benches: &[BenchRecord],
    ) -> Result<RecordSummary, HistoryError> {
        let tx = self.conn.transaction()?;
        let env = &meta.environment;
        tx.execute(
            "INSERT INTO environments (fingerprint, label, cpu_model, cores, os, arch, toolchain)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (fingerprint) DO NOTHING",
            params![
                env.key(),
                env.label,
                env.cpu_model,
                env.cores,
                env.os,
                env.arch,
                env.toolchain
            ],
        )?;
        let env_id: i64 = tx.query_row(
            "SELECT id FROM environments WHERE fingerprint = ?1",
            [env.key()],
            |r| r.get(0),
        )?;
        let existing: Option<i64> = tx
            .query_row("SELECT id FROM runs WHERE run_key = ?1", [&meta.key], |r| {
                r.get(0)
            })
            .optional()?;
        let run_id = match existing {
            Some(id) => {
                // Shards run side by side: the run started with the earliest shard and
                // took as long as the slowest one.
                tx.execute(
                    "UPDATE runs SET
                        commit_sha = COALESCE(commit_sha, ?2),
                        branch = COALESCE(branch, ?3),
                        profile = COALESCE(profile, ?4),
                        started_at = CASE WHEN started_at IS NULL OR ?5 < started_at THEN COALESCE(?5, started_at) ELSE started_at END,
                        duration_ms = MAX(COALESCE(duration_ms, 0), COALESCE(?6, 0)),
                        shards = shards + 1
                     WHERE id = ?1",
                    params![id, meta.commit, meta.branch, meta.profile, meta.started_at, meta.duration_ms],
                )?;
                id
            }
            None => {
                tx.execute(
                    "INSERT INTO runs (run_key, commit_sha, branch, profile, environment_id, started_at, duration_ms, shards)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1)",
                    params![meta.key, meta.commit, meta.branch, meta.profile, env_id, meta.started_at, meta.duration_ms],
                )?;
                tx.last_insert_rowid()
            }
        };
        {
            let mut insert_test = tx.prepare(
                "INSERT OR REPLACE INTO test_results
                 (run_id, suite, name, status, duration_ms, attempts, skip_reason, message)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for t in tests {
                insert_test.execute(params![
                    run_id,
                    t.suite,
                    t.name,
                    t.status.as_str(),
                    t.duration_ms,
                    t.attempts,
                    t.skip_reason,
                    t.message
                ])?;
            }
            let mut insert_bench = tx.prepare(
                "INSERT OR REPLACE INTO bench_results (run_id, name, source, unit, estimate, lower, upper)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for b in benches {
                insert_bench.execute(params![
                    run_id,
                    b.name,
                    b.source.as_str(),
                    b.unit,
                    b.estimate,
                    b.lower,
                    b.upper
                ])?;
            }
        }
        tx.commit()?;
        Ok(RecordSummary {
            run_id,
            key: meta.key.clone(),
            merged: existing.is_some(),
            tests: tests.len(),
            benches: benches.len(),
        })
    }

    /// The most recent `limit` runs, oldest first, with their results.
    pub fn recent_runs(&self, limit: usize) -> Result<Vec<StoredRun>, HistoryError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self.conn.prepare(
            "SELECT r.id, r.run_key, r.commit_sha, r.branch, r.profile, r.started_at, r.duration_ms, r.shards,
                    e.label, e.cpu_model, e.cores, e.os, e.arch, e.toolchain
             FROM runs r JOIN environments e ON e.id = r.environment_id
             ORDER BY r.id DESC LIMIT ?1",
        )?;
        let mut runs = stmt
            .query_map([limit], |r| {
                Ok(StoredRun {
                    id: r.get(0)?,
                    meta: RunMeta {
                        key: r.get(1)?,
                        commit: r.get(2)?,
                        branch: r.get(3)?,
                        profile: r.get(4)?,
                        started_at: r.get(5)?,
                        duration_ms: r.get(6)?,
                        environment: Fingerprint {
                            label: r.get(8)?,
                            cpu_model: r.get(9)?,
                            cores: r.get(10)?,
                            os: r.get(11)?,
                            arch: r.get(12)?,
                            toolchain: r.get(13)?,
                        },
                    },
                    shards: r.get(7)?,
                    tests: Vec::new(),
                    benches: Vec::new(),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        runs.reverse();
        let mut tests = self.conn.prepare(
            "SELECT suite, name, status, duration_ms, attempts, skip_reason, message
             FROM test_results WHERE run_id = ?1 ORDER BY suite, name",
        )?;
        let mut benches = self.conn.prepare(
            "SELECT name, source, unit, estimate, lower, upper
             FROM bench_results WHERE run_id = ?1 ORDER BY name",
        )?;
        for run in &mut runs {
            run.tests = rows_of_run(&mut tests, run.id, |r| {
                // Every column is read (a wrong type is a SQL error) before the status
                // is checked.
                let (suite, name, status, duration_ms, attempts, skip_reason, message) = (
                    r.get(0)?,
                    r.get(1)?,
                    r.get::<_, String>(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                );
                Ok(
                    known(TestStatus::parse, "test status", status).map(|status| TestRecord {
                        suite,
                        name,
                        status,
                        duration_ms,
                        attempts,
                        skip_reason,
                        message,
                    }),
                )
            })?;
            run.benches = rows_of_run(&mut benches, run.id, |r| {
                let (name, source, unit, estimate, lower, upper) = (
                    r.get(0)?,
                    r.get::<_, String>(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                );
                Ok(
                    known(BenchSource::parse, "bench source", source).map(|source| BenchRecord {
                        name,
                        source,
                        unit,
                        estimate,
                        lower,
                        upper,
                    }),
                )
            })?;
        }
        Ok(runs)
    }
}

/// One run's rows of `stmt` (a query on `?1 = run_id`), in the statement's order. `row`
/// maps a row: the outer error is SQLite's, the inner one a value this build cannot read.
fn rows_of_run<T>(
    stmt: &mut Statement<'_>,
    run_id: i64,
    row: impl FnMut(&Row<'_>) -> rusqlite::Result<Result<T, HistoryError>>,
) -> Result<Vec<T>, HistoryError> {
    stmt.query_map([run_id], row)?.map(|r| r?).collect()
}

/// Parses a stored enum name, or says the database holds one this build does not know.
fn known<T>(parse: fn(&str) -> Option<T>, what: &str, text: String) -> Result<T, HistoryError> {
    parse(&text).ok_or_else(|| HistoryError::Corrupt(format!("unknown {what} {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(label: &str) -> Fingerprint {
        Fingerprint {
            label: label.to_owned(),
            cpu_model: "Test CPU".to_owned(),
            cores: 2,
            os: "TestOS".to_owned(),
            arch: "x86_64".to_owned(),
            toolchain: "rustc 1.95.0".to_owned(),
        }
    }

    fn meta(key: &str) -> RunMeta {
        RunMeta {
            key: key.to_owned(),
            commit: Some("abc".to_owned()),
            branch: None,
            profile: Some("ci".to_owned()),
            environment: env("local"),
            started_at: Some("2026-01-01T00:00:10Z".to_owned()),
            duration_ms: Some(100.0),
        }
    }

    fn test(name: &str, status: TestStatus) -> TestRecord {
        TestRecord {
            suite: "s".to_owned(),
            name: name.to_owned(),
            status,
            duration_ms: 1.0,
            attempts: 1,
            skip_reason: None,
            message: None,
        }
    }

    #[test]
    fn shards_with_one_key_merge_into_one_run() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = History::open(&dir.path().join("h.sqlite")).unwrap();
        let first = h
            .record(&meta("run-1"), &[test("a", TestStatus::Passed)], &[])
            .unwrap();
        let mut second_meta = meta("run-1");
        second_meta.started_at = Some("2026-01-01T00:00:05Z".to_owned());
        second_meta.duration_ms = Some(300.0);
        let second = h
            .record(&second_meta, &[test("b", TestStatus::Failed)], &[])
            .unwrap();
        assert!(!first.merged);
        assert!(second.merged);
        assert_eq!(first.run_id, second.run_id);
        let runs = h.recent_runs(10).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].tests.len(), 2);
        assert_eq!(runs[0].shards, 2);
        assert_eq!(
            runs[0].meta.started_at.as_deref(),
            Some("2026-01-01T00:00:05Z")
        );
        assert_eq!(runs[0].meta.duration_ms, Some(300.0));
    }

    #[test]
    fn recording_the_same_file_twice_does_not_double_results() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = History::open(&dir.path().join("h.sqlite")).unwrap();
        let tests = [test("a", TestStatus::Passed), test("b", TestStatus::Flaky)];
        h.record(&meta("k"), &tests, &[]).unwrap();
        h.record(&meta("k"), &tests, &[]).unwrap();
        assert_eq!(h.recent_runs(10).unwrap()[0].tests.len(), 2);
    }

    #[test]
    fn recent_runs_are_oldest_first_and_limited() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = History::open(&dir.path().join("h.sqlite")).unwrap();
        for k in ["r1", "r2", "r3"] {
            h.record(&meta(k), &[], &[]).unwrap();
        }
        let keys: Vec<_> = h
            .recent_runs(2)
            .unwrap()
            .into_iter()
            .map(|r| r.meta.key)
            .collect();
        assert_eq!(keys, ["r2", "r3"]);
    }

    #[test]
    fn a_stored_status_or_source_this_build_does_not_know_is_corrupt_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = History::open(&dir.path().join("h.sqlite")).unwrap();
        let bench = BenchRecord {
            name: "b".to_owned(),
            source: BenchSource::Criterion,
            unit: "ns".to_owned(),
            estimate: 2.0,
            lower: 1.0,
            upper: 3.0,
        };
        h.record(&meta("k"), &[test("a", TestStatus::Passed)], &[bench])
            .unwrap();
        assert_eq!(h.recent_runs(10).unwrap()[0].benches.len(), 1);
        // The schema's CHECK keeps this build from writing an unknown status; a
        // damaged file has no such guard.
        h.conn
            .pragma_update(None, "ignore_check_constraints", true)
            .unwrap();
        for (sql, needle) in [
            (
                "UPDATE bench_results SET source = 'abacus'",
                r#"unknown bench source "abacus""#,
            ),
            (
                "UPDATE test_results SET status = 'maybe'",
                r#"unknown test status "maybe""#,
            ),
        ] {
            h.conn.execute(sql, []).unwrap();
            let err = h
                .recent_runs(10)
                .expect_err("an unknown value must not load");
            assert!(matches!(err, HistoryError::Corrupt(_)), "{err:?}");
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_an_open_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.sqlite");
        std::fs::write(&path, vec![0x5a_u8; 4096]).unwrap();
        let err = History::open(&path).err().expect("junk must not open");
        let text = err.to_string();
        assert!(text.contains("junk.sqlite"), "{text}");
    }
}
