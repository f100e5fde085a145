//! Loader settings from `gauntlet.toml`, the environment and the command line.
//!
//! Precedence is CLI > environment > file > default, per key. Every value is a human
//! string (`"60s"`, `"64MB"`) parsed by humantime and bytesize; a bad value is an error
//! that names where it came from, the key, the value and the accepted form.
//!
//! ```toml
//! [timeouts]
//! model_loading = "60s"
//!
//! [performance]
//! chunk_size = "64MB"        # "64MB" is 64,000,000 bytes; "64MiB" is 67,108,864
//! concurrent_loads = 2
//! progress_reporting = true
//! progress_interval = "1s"
//! ```
//!
//! Only `[timeouts].model_loading` and `[performance]` belong to the loader: other tables
//! and other `[timeouts]` keys are read by other parts of Gauntlet and ignored here, while
//! an unknown key inside `[performance]` is an error (a typo there would otherwise be
//! silently ignored).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytesize::ByteSize;

/// Environment variable overriding `[timeouts].model_loading`.
pub const ENV_MODEL_LOAD_TIMEOUT: &str = "GAUNTLET_MODEL_LOAD_TIMEOUT";
/// Environment variable overriding `[performance].progress_reporting`.
pub const ENV_PROGRESS_REPORTING: &str = "GAUNTLET_PROGRESS_REPORTING";
/// Environment variable overriding `[performance].progress_interval`.
pub const ENV_PROGRESS_INTERVAL: &str = "GAUNTLET_PROGRESS_INTERVAL";

const MIN_CHUNK: u64 = 4 << 10;
const MAX_CHUNK: u64 = 1 << 30;
const MAX_CONCURRENT: u64 = 64;

const EXPECT_DURATION: &str =
    "a duration such as \"60s\", \"1m30s\" or \"250ms\", greater than zero";
const EXPECT_SIZE: &str = "a size such as \"64MB\" or \"64MiB\", from 4 KiB to 1 GiB";
const EXPECT_COUNT: &str = "a whole number from 1 to 64";
const EXPECT_BOOL: &str = "true or false";
const EXPECT_ENV_BOOL: &str = "one of true, false, 1, 0, yes, no, on, off";

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default.
    Default,
    /// A key in a config file.
    File {
        /// The file.
        path: PathBuf,
        /// The dotted key, e.g. `performance.chunk_size`.
        key: String,
    },
    /// An environment variable.
    Env {
        /// The variable's name.
        var: &'static str,
    },
    /// A command-line flag.
    Cli {
        /// The flag, e.g. `--timeout`.
        flag: &'static str,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("the default"),
            Origin::File { path, key } => write!(f, "{key} in {}", path.display()),
            Origin::Env { var } => write!(f, "environment variable {var}"),
            Origin::Cli { flag } => write!(f, "command-line flag {flag}"),
        }
    }
}

/// A config value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value of the wrong form or out of range.
    #[error("invalid value {value:?} for {origin}: expected {expected}")]
    Invalid {
        /// Where it came from, including the key.
        origin: Origin,
        /// The offending value as written.
        value: String,
        /// The accepted form.
        expected: &'static str,
    },
    /// A key inside `[performance]` that the loader does not know.
    #[error(
        "unknown key {key:?} in [performance] of {}: expected one of chunk_size, concurrent_loads, progress_reporting, progress_interval",
        path.display()
    )]
    UnknownKey {
        /// The config file.
        path: PathBuf,
        /// The unknown key.
        key: String,
    },
    /// The file is not TOML, or a table is not a table.
    #[error("{} is not valid: {message}; help: check the TOML syntax near the reported line", path.display())]
    Syntax {
        /// The config file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// The file exists but cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A resolved value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub origin: Origin,
}

impl<T> Setting<T> {
    fn default(value: T) -> Self {
        Setting {
            value,
            origin: Origin::Default,
        }
    }
}

/// Raw command-line values, validated like every other source.
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    /// `--timeout` (duration).
    pub timeout: Option<String>,
    /// `--chunk-size` (size).
    pub chunk_size: Option<String>,
    /// `--progress-interval` (duration).
    pub progress_interval: Option<String>,
    /// `--no-progress` given: reporting off.
    pub no_progress: bool,
}

/// The loader's settings after precedence is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadConfig {
    /// Budget for one whole load (`[timeouts].model_loading`).
    pub model_loading_timeout: Setting<Duration>,
    /// Bytes per populate/read step; deadline and cancel are checked between steps.
    pub chunk_size: Setting<u64>,
    /// Loads allowed to run at once in this process; more wait (within their deadline).
    pub concurrent_loads: Setting<usize>,
    /// Whether progress events are reported.
    pub progress_reporting: Setting<bool>,
    /// Time between periodic progress events.
    pub progress_interval: Setting<Duration>,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            model_loading_timeout: Setting::default(Duration::from_secs(60)),
            chunk_size: Setting::default(64 << 20),
            concurrent_loads: Setting::default(2),
            progress_reporting: Setting::default(true),
            progress_interval: Setting::default(Duration::from_secs(1)),
        }
    }
}

fn parse_duration(raw: &str, origin: &Origin) -> Result<Duration, ConfigError> {
    match humantime::parse_duration(raw.trim()) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(invalid(origin, raw, EXPECT_DURATION)),
    }
}

fn parse_size(raw: &str, origin: &Origin) -> Result<u64, ConfigError> {
    match raw.trim().parse::<ByteSize>() {
        // A bare number of unclear unit is rejected: sizes always carry a unit.
        Ok(b) if raw.trim().parse::<u64>().is_err() && (MIN_CHUNK..=MAX_CHUNK).contains(&b.0) => {
            Ok(b.0)
        }
        _ => Err(invalid(origin, raw, EXPECT_SIZE)),
    }
}

fn parse_env_bool(raw: &str, origin: &Origin) -> Result<bool, ConfigError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(invalid(origin, raw, EXPECT_ENV_BOOL)),
    }
}

fn invalid(origin: &Origin, raw: &str, expected: &'static str) -> ConfigError {
    ConfigError::Invalid {
        origin: origin.clone(),
        value: raw.to_string(),
        expected,
    }
}

/// A TOML value as the user wrote it, for error messages.
fn shown(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl LoadConfig {
    /// Resolves settings from config text (with the path it came from, for messages),
    /// an environment lookup and command-line values.
    pub fn resolve(
        file: Option<(&Path, &str)>,
        env: impl Fn(&str) -> Option<String>,
        cli: &CliOverrides,
    ) -> Result<Self, ConfigError> {
        let mut cfg = LoadConfig::default();
        if let Some((path, text)) = file {
            cfg.apply_file(path, text)?;
        }
        cfg.apply_env(env)?;
        cfg.apply_cli(cli)?;
        Ok(cfg)
    }

    /// Reads `path` if it exists (a missing file means defaults) and the process
    /// environment, then applies `cli`.
    pub fn load(path: Option<&Path>, cli: &CliOverrides) -> Result<Self, ConfigError> {
        let text = match path {
            Some(p) => match std::fs::read_to_string(p) {
                Ok(t) => Some((p, t)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(source) => {
                    return Err(ConfigError::Io {
                        path: p.to_path_buf(),
                        source,
                    });
                }
            },
            None => None,
        };
        Self::resolve(
            text.as_ref().map(|(p, t)| (*p, t.as_str())),
            |k| std::env::var(k).ok(),
            cli,
        )
    }

    fn apply_file(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let doc: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax {
                path: path.to_path_buf(),
                message: e.message().to_string(),
            })?;
        let origin = |key: &str| Origin::File {
            path: path.to_path_buf(),
            key: key.to_string(),
        };
        let table = |name: &str| -> Result<Option<&toml::Table>, ConfigError> {
            match doc.get(name) {
                None => Ok(None),
                Some(toml::Value::Table(t)) => Ok(Some(t)),
                Some(_) => Err(ConfigError::Syntax {
                    path: path.to_path_buf(),
                    message: format!("`{name}` must be a table ([{name}])"),
                }),
            }
        };
        if let Some(v) = table("timeouts")?.and_then(|t| t.get("model_loading")) {
            let o = origin("timeouts.model_loading");
            let raw = v
                .as_str()
                .ok_or_else(|| invalid(&o, &shown(v), EXPECT_DURATION))?;
            self.model_loading_timeout = Setting {
                value: parse_duration(raw, &o)?,
                origin: o,
            };
        }
        let Some(perf) = table("performance")? else {
            return Ok(());
        };
        for (key, v) in perf {
            let o = origin(&format!("performance.{key}"));
            match key.as_str() {
                "chunk_size" => {
                    let raw = v
                        .as_str()
                        .ok_or_else(|| invalid(&o, &shown(v), EXPECT_SIZE))?;
                    self.chunk_size = Setting {
                        value: parse_size(raw, &o)?,
                        origin: o,
                    };
                }
                "concurrent_loads" => {
                    let n = v
                        .as_integer()
                        .and_then(|n| u64::try_from(n).ok())
                        .filter(|n| (1..=MAX_CONCURRENT).contains(n))
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or_else(|| invalid(&o, &shown(v), EXPECT_COUNT))?;
                    self.concurrent_loads = Setting {
                        value: n,
                        origin: o,
                    };
                }
                "progress_reporting" => {
                    let b = v
                        .as_bool()
                        .ok_or_else(|| invalid(&o, &shown(v), EXPECT_BOOL))?;
                    self.progress_reporting = Setting {
                        value: b,
                        origin: o,
                    };
                }
                "progress_interval" => {
                    let raw = v
                        .as_str()
                        .ok_or_else(|| invalid(&o, &shown(v), EXPECT_DURATION))?;
                    self.progress_interval = Setting {
                        value: parse_duration(raw, &o)?,
                        origin: o,
                    };
                }
                _ => {
                    return Err(ConfigError::UnknownKey {
                        path: path.to_path_buf(),
                        key: key.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        // An empty variable counts as unset, as shells make `VAR=` easy to leave behind.
        let get = |var: &'static str| {
            env(var)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (v, Origin::Env { var }))
        };
        if let Some((raw, o)) = get(ENV_MODEL_LOAD_TIMEOUT) {
            self.model_loading_timeout = Setting {
                value: parse_duration(&raw, &o)?,
                origin: o,
            };
        }
        if let Some((raw, o)) = get(ENV_PROGRESS_REPORTING) {
            self.progress_reporting = Setting {
                value: parse_env_bool(&raw, &o)?,
                origin: o,
            };
        }
        if let Some((raw, o)) = get(ENV_PROGRESS_INTERVAL) {
            self.progress_interval = Setting {
                value: parse_duration(&raw, &o)?,
                origin: o,
            };
        }
        Ok(())
    }

    fn apply_cli(&mut self, cli: &CliOverrides) -> Result<(), ConfigError> {
        if let Some(raw) = &cli.timeout {
            let o = Origin::Cli { flag: "--timeout" };
            self.model_loading_timeout = Setting {
                value: parse_duration(raw, &o)?,
                origin: o,
            };
        }
        if let Some(raw) = &cli.chunk_size {
            let o = Origin::Cli {
                flag: "--chunk-size",
            };
            self.chunk_size = Setting {
                value: parse_size(raw, &o)?,
                origin: o,
            };
        }
        if let Some(raw) = &cli.progress_interval {
            let o = Origin::Cli {
                flag: "--progress-interval",
            };
            self.progress_interval = Setting {
                value: parse_duration(raw, &o)?,
                origin: o,
            };
        }
        if cli.no_progress {
            self.progress_reporting = Setting {
                value: false,
                origin: Origin::Cli {
                    flag: "--no-progress",
                },
            };
        }
        Ok(())
    }
}
