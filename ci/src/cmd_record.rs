//! `gauntlet record`: ingest JUnit, criterion and bench results into history.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;

use crate::exit;
use crate::history::environment::output_within;
use crate::history::{
    self, BenchRecord, Fingerprint, History, RecordSummary, RunMeta, TestRecord, TestStatus,
};

/// How long a `git` probe for the commit or branch may take.
const GIT_DEADLINE: Duration = Duration::from_secs(10);

/// Ingests CI artifacts into the history database.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// History database (default: $GAUNTLET_DB, else target/gauntlet/history.sqlite).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// nextest JUnit files (target/nextest/<profile>/junit.xml), e.g. one per shard.
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub junit: Vec<PathBuf>,
    /// criterion output directories (target/criterion).
    #[arg(long, num_args = 1.., value_name = "DIR")]
    pub criterion: Vec<PathBuf>,
    /// `gauntlet bench --json` output files.
    #[arg(long = "bench-json", num_args = 1.., value_name = "FILE")]
    pub bench_json: Vec<PathBuf>,
    /// Run id: shards recorded with one id merge into one run
    /// (default: $GITHUB_RUN_ID-$GITHUB_RUN_ATTEMPT, else the commit).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Commit SHA (default: $GITHUB_SHA, else `git rev-parse HEAD`).
    #[arg(long)]
    pub commit: Option<String>,
    /// Branch (default: $GITHUB_HEAD_REF or $GITHUB_REF_NAME, else the current git branch).
    #[arg(long)]
    pub branch: Option<String>,
    /// nextest profile the results came from.
    #[arg(long)]
    pub profile: Option<String>,
    /// Environment label to record under instead of this machine's (e.g. when a
    /// report job records shards that ran elsewhere).
    #[arg(long, value_name = "LABEL")]
    pub env_label: Option<String>,
}

/// Everything read from the artifacts, before it is written.
pub struct Ingested {
    /// Test results from all JUnit files.
    pub tests: Vec<TestRecord>,
    /// Benchmark results.
    pub benches: Vec<BenchRecord>,
    /// Earliest start among the JUnit files.
    pub started_at: Option<String>,
    /// Longest JUnit duration.
    pub duration_ms: Option<f64>,
}

/// Reads the artifacts named in `args`; the first bad file stops it.
pub fn ingest(args: &RecordArgs) -> Result<Ingested, String> {
    let mut out = Ingested {
        tests: Vec::new(),
        benches: Vec::new(),
        started_at: None,
        duration_ms: None,
    };
    for path in &args.junit {
        let report = history::junit::read(path).map_err(|e| e.to_string())?;
        if let Some(s) = report.started_at
            && out.started_at.as_ref().is_none_or(|cur| s < *cur)
        {
            out.started_at = Some(s);
        }
        if let Some(d) = report.duration_ms {
            out.duration_ms = Some(out.duration_ms.map_or(d, |cur: f64| cur.max(d)));
        }
        out.tests.extend(report.tests);
    }
    for dir in &args.criterion {
        out.benches
            .extend(history::criterion::read_dir(dir).map_err(|e| e.to_string())?);
    }
    for path in &args.bench_json {
        out.benches
            .extend(history::bench_json::read(path).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// Builds the run metadata from the arguments, CI variables and git.
pub fn run_meta(args: &RecordArgs, ingested: &Ingested) -> RunMeta {
    let env_var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let commit = args
        .commit
        .clone()
        .or_else(|| env_var("GITHUB_SHA"))
        .or_else(|| git(&["rev-parse", "HEAD"]));
    let branch = args
        .branch
        .clone()
        .or_else(|| env_var("GITHUB_HEAD_REF"))
        .or_else(|| env_var("GITHUB_REF_NAME"))
        .or_else(|| git(&["branch", "--show-current"]));
    let key = args
        .run_id
        .clone()
        .or_else(|| {
            env_var("GITHUB_RUN_ID").map(|id| {
                format!(
                    "gha-{id}-{}",
                    env_var("GITHUB_RUN_ATTEMPT").unwrap_or_else(|| "1".to_owned())
                )
            })
        })
        .or_else(|| commit.as_ref().map(|c| format!("commit-{c}")))
        .unwrap_or_else(unique_run_id);
    let mut environment = Fingerprint::detect();
    if let Some(label) = &args.env_label {
        environment.label = label.clone();
    }
    RunMeta {
        key,
        commit,
        branch,
        profile: args.profile.clone(),
        environment,
        started_at: ingested.started_at.clone(),
        duration_ms: ingested.duration_ms,
    }
}

/// A run id unique to this invocation, for local runs that must not merge.
pub fn unique_run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("local-{nanos}-{}", std::process::id())
}

fn git(args: &[&str]) -> Option<String> {
    output_within(Command::new("git").args(args), GIT_DEADLINE)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// One line describing what was recorded.
pub fn describe(summary: &RecordSummary, tests: &[TestRecord], db: &std::path::Path) -> String {
    let count = |s: TestStatus| tests.iter().filter(|t| t.status == s).count();
    format!(
        "recorded {} tests ({} passed, {} failed, {} flaky, {} skipped) and {} benchmarks into run {} (#{}{}) in {}",
        summary.tests,
        count(TestStatus::Passed),
        count(TestStatus::Failed),
        count(TestStatus::Flaky),
        count(TestStatus::Skipped),
        summary.benches,
        summary.key,
        summary.run_id,
        if summary.merged {
            ", merged with an earlier shard"
        } else {
            ""
        },
        db.display()
    )
}

/// Runs `gauntlet record`.
pub fn run(args: RecordArgs) -> ExitCode {
    if args.junit.is_empty() && args.criterion.is_empty() && args.bench_json.is_empty() {
        eprintln!(
            "error: nothing to record; pass --junit FILE, --criterion DIR or --bench-json FILE"
        );
        return exit::code(exit::INVALID);
    }
    let ingested = match ingest(&args) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::code(exit::INVALID);
        }
    };
    let meta = run_meta(&args, &ingested);
    let db = history::default_db_path(args.db.as_deref());
    let result =
        History::open(&db).and_then(|mut h| h.record(&meta, &ingested.tests, &ingested.benches));
    match result {
        Ok(summary) => {
            println!("{}", describe(&summary, &ingested.tests, &db));
            exit::code(exit::OK)
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::code(exit::IO)
        }
    }
}
