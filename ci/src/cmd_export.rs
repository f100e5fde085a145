//! `gauntlet export`: one recorded run in another tool's format.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use crate::exit;
use crate::export;
use crate::history::{self, History, StoredRun};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Bencher Metric Format JSON (benchmarks).
    Bmf,
    /// github-action-benchmark `customSmallerIsBetter` JSON (benchmarks).
    Gab,
    /// One merged JUnit XML (tests of all shards).
    Junit,
}

/// Exports a recorded run for Bencher, github-action-benchmark or JUnit reporters.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// History database (default: $GAUNTLET_DB, else target/gauntlet/history.sqlite).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: Format,
    /// Run to export (default: the latest run that has what the format needs).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Write here instead of stdout.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

/// How many recent runs are searched for the latest one with results of the wanted kind.
const SEARCH_RUNS: usize = 500;

fn pick(runs: Vec<StoredRun>, args: &ExportArgs) -> Result<StoredRun, String> {
    let wanted = |r: &StoredRun| match args.format {
        Format::Bmf | Format::Gab => !r.benches.is_empty(),
        Format::Junit => !r.tests.is_empty(),
    };
    match &args.run_id {
        Some(id) => runs
            .into_iter()
            .find(|r| &r.meta.key == id)
            .ok_or_else(|| format!("no run {id:?} in the last {SEARCH_RUNS} runs of the history")),
        None => runs.into_iter().rev().find(wanted).ok_or_else(|| {
            let what = if args.format == Format::Junit {
                "test results"
            } else {
                "benchmarks"
            };
            format!("no recorded run has {what}; record some with `gauntlet record` first")
        }),
    }
}

/// Runs `gauntlet export`.
pub fn run(args: ExportArgs) -> ExitCode {
    let db = history::default_db_path(args.db.as_deref());
    if !db.exists() {
        eprintln!(
            "error: {}: no history yet; record a run first",
            db.display()
        );
        return exit::code(exit::INVALID);
    }
    let runs = match History::open(&db).and_then(|h| h.recent_runs(SEARCH_RUNS)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::code(exit::IO);
        }
    };
    let run = match pick(runs, &args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::code(exit::INVALID);
        }
    };
    let text = match args.format {
        Format::Bmf => pretty(&export::bmf::document(&run.benches)),
        Format::Gab => pretty(&export::gab::document(&run.benches)),
        Format::Junit => export::junit::document(&run),
    };
    match &args.out {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &text) {
                eprintln!("error: {}: cannot write: {e}", path.display());
                return exit::code(exit::IO);
            }
        }
        None => print!("{text}"),
    }
    exit::code(exit::OK)
}

fn pretty(v: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    s
}
