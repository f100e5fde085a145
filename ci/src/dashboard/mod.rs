//! The static regression dashboard: `index.html` with inline SVG charts (also written
//! to `charts/*.svg`), no scripts and no network assets, so it works from `file://`,
//! GitHub Pages or a CI artifact alike.

pub mod charts;
mod page;
pub use page::escape;
pub mod summary;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::analysis::Report;
use crate::history::StoredRun;

/// How many tests the per-test charts show.
const TOP_TESTS: usize = 6;

/// The dashboard could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// A file or directory could not be written.
    #[error("{path}: cannot write the dashboard: {source}")]
    Io {
        /// The path at fault.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A chart could not be drawn.
    #[error(transparent)]
    Chart(#[from] charts::ChartError),
}

/// Writes `out/index.html` and `out/charts/*.svg`.
pub fn render(out: &Path, runs: &[StoredRun], report: &Report) -> Result<(), DashboardError> {
    let noise = report_noise(report);
    let mut all = vec![
        charts::run_history(runs)?,
        charts::slowest_over_time(runs, TOP_TESTS)?,
    ];
    let env_rows = charts::environment_rows(runs, TOP_TESTS);
    all.push(charts::duration_by_environment(&env_rows)?);
    let bench_names: BTreeSet<&str> = runs
        .iter()
        .flat_map(|r| r.benches.iter().map(|b| b.name.as_str()))
        .collect();
    let mut bench_charts = Vec::new();
    for (i, name) in bench_names.iter().enumerate() {
        bench_charts.push(charts::bench_trend(runs, name, noise, i)?);
    }

    let chart_dir = out.join("charts");
    std::fs::create_dir_all(&chart_dir).map_err(|source| DashboardError::Io {
        path: chart_dir.clone(),
        source,
    })?;
    for chart in all.iter().chain(&bench_charts) {
        let path = chart_dir.join(format!("{}.svg", chart.id));
        write(&path, &chart.svg)?;
    }
    let html = page::index(runs, report, &all, &bench_charts, &env_rows);
    write(&out.join("index.html"), &html)
}

fn report_noise(report: &Report) -> f64 {
    report.noise_threshold
}

fn write(path: &Path, text: &str) -> Result<(), DashboardError> {
    std::fs::write(path, text).map_err(|source| DashboardError::Io {
        path: path.to_owned(),
        source,
    })
}
