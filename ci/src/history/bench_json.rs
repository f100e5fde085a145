//! Reads `gauntlet bench --json` output into [`BenchRecord`]s.
//!
//! The shape is `{"results": [{"format", "m", "k", "n", "threads", "ns_per_op", …}]}`;
//! unknown fields are ignored so the bench command can grow without breaking history.
//! It reports one number per shape (no interval), so the interval is that number.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{BenchRecord, BenchSource};

/// A bench JSON file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BenchJsonError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The JSON does not have the expected shape.
    #[error(
        "{path}:{line}:{column}: not `gauntlet bench --json` output ({{\"results\": [{{\"format\", \"m\", \"k\", \"n\", \"threads\", \"ns_per_op\"}}]}}): {message}"
    )]
    Shape {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What serde_json said.
        message: String,
    },
    /// A result's time is negative or not finite.
    #[error("{path}: result {index} has ns_per_op = {value}, expected a positive number")]
    BadTime {
        /// The file.
        path: PathBuf,
        /// Index in `results`.
        index: usize,
        /// The value found.
        value: f64,
    },
}

#[derive(Deserialize)]
struct BenchOutput {
    results: Vec<BenchResult>,
}

#[derive(Deserialize)]
struct BenchResult {
    format: String,
    m: u64,
    k: u64,
    n: u64,
    threads: u64,
    ns_per_op: f64,
    #[serde(default)]
    kernel: Option<String>,
}

/// Reads one `gauntlet bench --json` file.
pub fn read(path: &Path) -> Result<Vec<BenchRecord>, BenchJsonError> {
    let text = std::fs::read_to_string(path).map_err(|source| BenchJsonError::Io {
        path: path.to_owned(),
        source,
    })?;
    let parsed: BenchOutput = serde_json::from_str(&text).map_err(|e| BenchJsonError::Shape {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    parsed
        .results
        .into_iter()
        .enumerate()
        .map(|(index, r)| {
            if !(r.ns_per_op.is_finite() && r.ns_per_op >= 0.0) {
                return Err(BenchJsonError::BadTime {
                    path: path.to_owned(),
                    index,
                    value: r.ns_per_op,
                });
            }
            let kernel = r.kernel.map(|k| format!("/{k}")).unwrap_or_default();
            Ok(BenchRecord {
                name: format!(
                    "bench/{}{kernel}/{}x{}x{}/t{}",
                    r.format, r.m, r.k, r.n, r.threads
                ),
                source: BenchSource::GauntletBench,
                unit: "ns".to_owned(),
                estimate: r.ns_per_op,
                lower: r.ns_per_op,
                upper: r.ns_per_op,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_gauntlet_bench_output_is_read() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bench/kernels-256.json");
        let benches = read(&path).unwrap();
        assert!(!benches.is_empty());
        assert!(
            benches
                .iter()
                .all(|b| b.name.starts_with("bench/") && b.estimate > 0.0)
        );
        assert!(
            benches.iter().any(|b| b.name.contains("TQ2_0/256x256x1")),
            "{benches:?}"
        );
    }

    #[test]
    fn missing_field_names_the_shape_expected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.json");
        std::fs::write(&path, r#"{"results": [{"format": "TQ2_0"}]}"#).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(
            err.contains("ns_per_op") && err.contains("b.json:1:"),
            "{err}"
        );
    }
}
