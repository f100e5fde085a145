//! Versioned schema migrations, tracked in SQLite's `user_version`.
//!
//! Each entry upgrades the schema by one version and never changes once released; a
//! new table or column is a new entry. A database newer than this list is refused
//! rather than guessed at.

use std::path::Path;

use rusqlite::Connection;

use super::HistoryError;

/// Migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // v1: runs, their environments, test results and benchmark results.
    r#"
    CREATE TABLE environments (
        id          INTEGER PRIMARY KEY,
        fingerprint TEXT NOT NULL UNIQUE,
        label       TEXT NOT NULL,
        cpu_model   TEXT NOT NULL,
        cores       INTEGER NOT NULL,
        os          TEXT NOT NULL,
        arch        TEXT NOT NULL,
        toolchain   TEXT NOT NULL
    );
    CREATE TABLE runs (
        id             INTEGER PRIMARY KEY,
        run_key        TEXT NOT NULL UNIQUE,
        commit_sha     TEXT,
        branch         TEXT,
        profile        TEXT,
        environment_id INTEGER NOT NULL REFERENCES environments(id),
        started_at     TEXT,
        duration_ms    REAL,
        shards         INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE test_results (
        run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        suite       TEXT NOT NULL,
        name        TEXT NOT NULL,
        status      TEXT NOT NULL CHECK (status IN ('passed', 'failed', 'flaky', 'skipped')),
        duration_ms REAL NOT NULL,
        attempts    INTEGER NOT NULL,
        skip_reason TEXT,
        message     TEXT,
        PRIMARY KEY (run_id, suite, name)
    );
    CREATE INDEX test_results_by_test ON test_results (suite, name);
    CREATE TABLE bench_results (
        run_id   INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        name     TEXT NOT NULL,
        source   TEXT NOT NULL,
        unit     TEXT NOT NULL,
        estimate REAL NOT NULL,
        lower    REAL NOT NULL,
        upper    REAL NOT NULL,
        PRIMARY KEY (run_id, name)
    );
    "#,
];

/// The schema version this build writes.
pub const CURRENT: i64 = MIGRATIONS.len() as i64;

/// Brings `conn` up to [`CURRENT`], one transaction per step.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<(), HistoryError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > CURRENT {
        return Err(HistoryError::SchemaTooNew {
            path: path.to_owned(),
            found,
            supported: CURRENT,
        });
    }
    let start = usize::try_from(found).unwrap_or(0);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(start) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_database_reaches_current_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.sqlite");
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn, &path).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, CURRENT);
        // Migrating again is a no-op, not a "table exists" error.
        migrate(&mut conn, &path).unwrap();
    }

    #[test]
    fn newer_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.sqlite");
        let mut conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", CURRENT + 1)
            .unwrap();
        let err = migrate(&mut conn, &path).unwrap_err();
        assert!(matches!(err, HistoryError::SchemaTooNew { found, .. } if found == CURRENT + 1));
    }
}
