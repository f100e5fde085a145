//! Reads criterion's `target/criterion/**/new/estimates.json` into [`BenchRecord`]s.
//!
//! Criterion keeps the latest measurement of each benchmark in `<id>/new/` (the previous
//! one moves to `<id>/base/`), so only `new/` is read. The typical time per iteration is
//! the `slope` estimate when criterion fitted one (linear sampling) and the `mean`
//! otherwise, which is what criterion itself prints as `time: [lower estimate upper]`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{BenchRecord, BenchSource};

/// Deepest directory nesting searched; criterion's layout is `group/function/value/new`.
const MAX_DEPTH: usize = 12;

/// A criterion directory that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CriterionError {
    /// A directory or file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The path at fault.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An estimates or benchmark file is not what criterion writes.
    #[error("{path}:{line}:{column}: not a criterion estimates file: {message}")]
    Json {
        /// The file at fault.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What serde_json said.
        message: String,
    },
    /// An estimate is negative, not finite, or outside its own interval.
    #[error("{path}: estimate {estimate} with interval [{lower}, {upper}] is not a valid time")]
    BadEstimate {
        /// The file at fault.
        path: PathBuf,
        /// Point estimate.
        estimate: f64,
        /// Lower bound.
        lower: f64,
        /// Upper bound.
        upper: f64,
    },
    /// The directory holds no `new/estimates.json` at all.
    #[error(
        "{0}: no criterion results (no */new/estimates.json); run `cargo bench` first and pass target/criterion"
    )]
    Empty(PathBuf),
}

#[derive(Deserialize)]
struct Estimates {
    mean: Estimate,
    slope: Option<Estimate>,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
    confidence_interval: Interval,
}

#[derive(Deserialize)]
struct Interval {
    lower_bound: f64,
    upper_bound: f64,
}

#[derive(Deserialize)]
struct BenchmarkId {
    full_id: String,
}

/// Reads every benchmark below `root`, sorted by name.
pub fn read_dir(root: &Path) -> Result<Vec<BenchRecord>, CriterionError> {
    let mut found = Vec::new();
    walk(root, root, 0, &mut found)?;
    if found.is_empty() {
        return Err(CriterionError::Empty(root.to_owned()));
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

fn walk(
    root: &Path,
    dir: &Path,
    depth: usize,
    out: &mut Vec<BenchRecord>,
) -> Result<(), CriterionError> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let io = |source| CriterionError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let file_type = entry.file_type().map_err(io)?;
        if !file_type.is_dir() || entry.file_name() == "report" {
            continue;
        }
        if entry.file_name() == "new" {
            let estimates = path.join("estimates.json");
            if estimates.is_file() {
                out.push(read_one(root, dir, &path, &estimates)?);
            }
        } else {
            walk(root, &path, depth + 1, out)?;
        }
    }
    Ok(())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, CriterionError> {
    let text = std::fs::read_to_string(path).map_err(|source| CriterionError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| CriterionError::Json {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

fn read_one(
    root: &Path,
    bench_dir: &Path,
    new_dir: &Path,
    estimates: &Path,
) -> Result<BenchRecord, CriterionError> {
    let parsed: Estimates = read_json(estimates)?;
    let chosen = parsed.slope.unwrap_or(parsed.mean);
    let (estimate, lower, upper) = (
        chosen.point_estimate,
        chosen.confidence_interval.lower_bound,
        chosen.confidence_interval.upper_bound,
    );
    let valid = [estimate, lower, upper]
        .iter()
        .all(|v| v.is_finite() && *v >= 0.0)
        && lower <= estimate
        && estimate <= upper;
    if !valid {
        return Err(CriterionError::BadEstimate {
            path: estimates.to_owned(),
            estimate,
            lower,
            upper,
        });
    }
    // benchmark.json names the benchmark the way criterion printed it; the directory
    // path is a fallback for older layouts (criterion sanitises names into paths).
    let id_file = new_dir.join("benchmark.json");
    let name = if id_file.is_file() {
        read_json::<BenchmarkId>(&id_file)?.full_id
    } else {
        bench_dir
            .strip_prefix(root)
            .unwrap_or(bench_dir)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    };
    Ok(BenchRecord {
        name,
        source: BenchSource::Criterion,
        unit: "ns".to_owned(),
        estimate,
        lower,
        upper,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(rel)
    }

    #[test]
    fn real_criterion_output_uses_the_slope_estimate() {
        let benches = read_dir(&data("criterion/after")).unwrap();
        let names: Vec<_> = benches.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["sums/sum_slowing", "sums/sum_stable"]);
        let slowing = &benches[0];
        // criterion printed `time: [3.7025 µs 3.7196 µs 3.7398 µs]` for this run.
        assert!((slowing.estimate - 3719.56).abs() < 0.1, "{slowing:?}");
        assert!(slowing.lower < slowing.estimate && slowing.estimate < slowing.upper);
    }

    #[test]
    fn directory_without_results_says_to_run_cargo_bench() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_dir(dir.path()).unwrap_err();
        assert!(err.to_string().contains("cargo bench"), "{err}");
    }

    #[test]
    fn damaged_estimates_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("g/f/new");
        std::fs::create_dir_all(&new).unwrap();
        std::fs::write(new.join("estimates.json"), "{\n\"mean\": 3\n}").unwrap();
        let err = read_dir(dir.path()).unwrap_err();
        assert!(matches!(err, CriterionError::Json { line: 2, .. }), "{err}");
    }

    #[test]
    fn interval_not_around_the_estimate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("b/new");
        std::fs::create_dir_all(&new).unwrap();
        let est = r#"{"mean":{"point_estimate":5.0,"confidence_interval":{"lower_bound":6.0,"upper_bound":7.0}},"slope":null}"#;
        std::fs::write(new.join("estimates.json"), est).unwrap();
        assert!(matches!(
            read_dir(dir.path()),
            Err(CriterionError::BadEstimate { .. })
        ));
    }
}
