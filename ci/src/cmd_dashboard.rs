//! `gauntlet dashboard`: analyse history and render the static dashboard.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::analysis::{self, AnalysisConfig};
use crate::exit;
use crate::history::{self, History};

/// Renders the regression dashboard, or prints the analysis as JSON.
#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// History database (default: $GAUNTLET_DB, else target/gauntlet/history.sqlite).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Output directory (default: target/gauntlet/dashboard).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the analysis (flaky, failures, regressions, …) as JSON on stdout instead
    /// of a summary; the site is still written when --out is given.
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// Print the summary as Markdown (for `$GITHUB_STEP_SUMMARY`) instead of text.
    #[arg(long)]
    pub markdown: bool,
    /// Configuration file whose [analysis] table sets the thresholds.
    #[arg(long, default_value = "gauntlet.toml")]
    pub config: PathBuf,
}

/// Loads the thresholds and the recent runs.
pub fn load(
    db: Option<&Path>,
    config: &Path,
) -> Result<(AnalysisConfig, Vec<history::StoredRun>), String> {
    let config = AnalysisConfig::load(config).map_err(|e| e.to_string())?;
    let path = history::default_db_path(db);
    if !path.exists() {
        return Err(format!(
            "{}: no history yet; record a run first (`gauntlet run` or `gauntlet record --junit …`)",
            path.display()
        ));
    }
    let runs = History::open(&path)
        .and_then(|h| h.recent_runs(config.history_runs))
        .map_err(|e| e.to_string())?;
    Ok((config, runs))
}

/// Default dashboard directory.
pub fn default_out() -> PathBuf {
    history::target_dir().join("gauntlet").join("dashboard")
}

/// Runs `gauntlet dashboard`.
pub fn run(args: DashboardArgs) -> ExitCode {
    let (config, runs) = match load(args.db.as_deref(), &args.config) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::code(exit::INVALID);
        }
    };
    let report = analysis::analyze(&runs, &config);
    let machine_output = args.json || args.markdown;
    let out = match (&args.out, machine_output) {
        (Some(o), _) => Some(o.clone()),
        (None, false) => Some(default_out()),
        (None, true) => None,
    };
    if let Some(out) = &out
        && let Err(e) = crate::dashboard::render(out, &runs, &report)
    {
        eprintln!("error: {e}");
        return exit::code(exit::IO);
    }
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(j) => println!("{j}"),
            Err(e) => {
                eprintln!("error: cannot serialise the analysis: {e}");
                return exit::code(exit::IO);
            }
        }
    } else if args.markdown {
        print!("{}", crate::dashboard::summary::markdown(&report));
    } else {
        print!("{}", crate::dashboard::summary::text(&report));
        if let Some(out) = &out {
            println!("dashboard: {}", out.join("index.html").display());
        }
    }
    exit::code(exit::OK)
}
