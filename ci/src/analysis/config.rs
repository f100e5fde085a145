//! The `[analysis]` table of `gauntlet.toml`: every threshold the analysis uses.
//!
//! Only this table is read here; the rest of the file belongs to the harness's budget
//! configuration and is ignored, so the two can evolve separately.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Thresholds for flaky, failure and regression detection.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct AnalysisConfig {
    /// Runs (most recent) that flakiness is judged over.
    pub flaky_window: usize,
    /// Failure rate over the window above which an intermittently failing test is flaky.
    #[serde(deserialize_with = "fraction")]
    pub flaky_failure_rate: f64,
    /// Pass/fail flips needed before a failure rate alone marks a test flaky; one flip
    /// is a new failure (or a fix), not flakiness.
    pub flaky_min_transitions: usize,
    /// Most recent runs per environment compared against the baseline.
    pub duration_recent_runs: usize,
    /// Runs before the recent ones that form the baseline.
    pub duration_baseline_runs: usize,
    /// Fewest samples on each side before the rank test is trusted.
    pub duration_min_samples: usize,
    /// Significance level of the one-sided Mann-Whitney U test.
    pub duration_alpha: f64,
    /// Smallest median slowdown reported, as a fraction ("10%" or 0.1).
    #[serde(deserialize_with = "fraction")]
    pub duration_min_slowdown: f64,
    /// Tests faster than this are too noisy to judge ("10ms").
    #[serde(deserialize_with = "duration")]
    pub duration_floor: Duration,
    /// Benchmark noise threshold: both confidence bounds of the change must exceed it
    /// ("5%" or 0.05).
    #[serde(deserialize_with = "fraction")]
    pub bench_noise_threshold: f64,
    /// How many runs are loaded from history for analysis and charts.
    pub history_runs: usize,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            flaky_window: 30,
            flaky_failure_rate: 0.05,
            flaky_min_transitions: 2,
            duration_recent_runs: 5,
            duration_baseline_runs: 20,
            duration_min_samples: 5,
            duration_alpha: 0.01,
            duration_min_slowdown: 0.10,
            duration_floor: Duration::from_millis(10),
            bench_noise_threshold: 0.05,
            history_runs: 200,
        }
    }
}

/// `gauntlet.toml` could not be read or its `[analysis]` table is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML or the `[analysis]` table is invalid.
    #[error("{path}: [analysis]: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What TOML said, with line and column.
        message: String,
    },
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    analysis: Option<toml::Value>,
}

impl AnalysisConfig {
    /// Reads `[analysis]` from `path`; a missing file or table means the defaults.
    pub fn load(path: &Path) -> Result<AnalysisConfig, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(AnalysisConfig::default());
            }
            Err(source) => {
                return Err(ConfigError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        AnalysisConfig::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses the `[analysis]` table out of a whole `gauntlet.toml`.
    pub fn parse(text: &str) -> Result<AnalysisConfig, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        match file.analysis {
            None => Ok(AnalysisConfig::default()),
            Some(table) => {
                let config: AnalysisConfig = table
                    .try_into()
                    .map_err(|e: toml::de::Error| e.to_string())?;
                config.validate()?;
                Ok(config)
            }
        }
    }

    fn validate(&self) -> Result<(), String> {
        if self.duration_min_samples < 2 {
            return Err("duration-min-samples must be at least 2 for a rank test".to_owned());
        }
        if !(self.duration_alpha > 0.0 && self.duration_alpha < 1.0) {
            return Err(format!(
                "duration-alpha = {} must be between 0 and 1 (e.g. 0.01)",
                self.duration_alpha
            ));
        }
        if self.flaky_window == 0 || self.history_runs == 0 {
            return Err("flaky-window and history-runs must be at least 1".to_owned());
        }
        Ok(())
    }
}

/// Accepts `0.05` or `"5%"`.
fn fraction<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(f64),
        Text(String),
    }
    let value = match Raw::deserialize(d)? {
        Raw::Number(n) => n,
        Raw::Text(t) => t
            .trim()
            .strip_suffix('%')
            .and_then(|p| p.trim().parse::<f64>().ok())
            .map(|p| p / 100.0)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{t:?} is not a fraction: expected a number (0.05) or a percentage (\"5%\")"
                ))
            })?,
    };
    if value.is_finite() && (0.0..=10.0).contains(&value) {
        Ok(value)
    } else {
        Err(serde::de::Error::custom(format!(
            "{value} is out of range: expected a fraction between 0 and 10 (0.05 or \"5%\")"
        )))
    }
}

/// Accepts a human duration string (`"10ms"`, `"1s"`).
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "{text:?}: {e}; expected a duration such as \"10ms\" or \"1s\""
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rstest::rstest]
    #[case::missing_table_means_defaults("[budgets]\nbase = \"1s\"\n", Some(0.05))]
    #[case::percent_string_is_a_fraction(
        "[analysis]\nbench-noise-threshold = \"7.5%\"\n",
        Some(0.075)
    )]
    #[case::plain_number_is_a_fraction("[analysis]\nbench-noise-threshold = 0.1\n", Some(0.1))]
    #[case::percent_without_number_should_error(
        "[analysis]\nbench-noise-threshold = \"%\"\n",
        None
    )]
    #[case::negative_threshold_should_error("[analysis]\nbench-noise-threshold = -0.1\n", None)]
    #[case::unknown_key_should_error("[analysis]\nbench-noise = 0.1\n", None)]
    #[case::bare_integer_duration_should_error("[analysis]\nduration-floor = 10\n", None)]
    fn analysis_table(#[case] text: &str, #[case] noise: Option<f64>) {
        match (AnalysisConfig::parse(text), noise) {
            (Ok(c), Some(n)) => assert!((c.bench_noise_threshold - n).abs() < 1e-12),
            (Err(_), None) => {}
            (got, want) => panic!("parse({text:?}) = {got:?}, wanted noise {want:?}"),
        }
    }

    #[test]
    fn error_names_the_accepted_forms() {
        let err = AnalysisConfig::parse("[analysis]\nflaky-failure-rate = \"lots\"\n").unwrap_err();
        assert!(err.contains("\"5%\""), "{err}");
    }

    #[test]
    fn human_duration_floor_is_parsed() {
        let c = AnalysisConfig::parse("[analysis]\nduration-floor = \"250ms\"\n").unwrap();
        assert_eq!(c.duration_floor, Duration::from_millis(250));
    }
}

#[cfg(test)]
mod repository_config {
    use super::*;

    #[test]
    fn the_repositorys_gauntlet_toml_analysis_table_parses_to_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gauntlet.toml");
        let config = AnalysisConfig::load(&path).unwrap();
        assert_eq!(config, AnalysisConfig::default());
    }
}
