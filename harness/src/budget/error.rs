//! Errors for `gauntlet.toml` and the timeout variables: each names where the bad value came
//! from, the key, the value and the form that is accepted.

use std::fmt;
use std::path::PathBuf;

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A `gauntlet.toml` file.
    File(PathBuf),
    /// An environment variable (its name).
    Var(&'static str),
    /// A `#[timeout("…")]` attribute.
    Attribute,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Var(name) => write!(f, "environment variable {name}"),
            Self::Attribute => f.write_str("#[timeout] attribute"),
        }
    }
}

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists (or was named) but could not be read.
    #[error("cannot read {path}: {source}; fix the path or unset GAUNTLET_CONFIG")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The file is not TOML.
    #[error("{path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A key this crate owns is misspelled or unsupported.
    #[error("{origin}: unknown key `{key}` in [{table}]; expected one of: {expected}")]
    UnknownKey {
        /// Where.
        origin: Origin,
        /// The table holding the key.
        table: String,
        /// The unknown key.
        key: String,
        /// The keys that are accepted.
        expected: String,
    },
    /// A value has the wrong form.
    #[error("{origin}: `{key}` = {value} is invalid; expected {expected}")]
    BadValue {
        /// Where.
        origin: Origin,
        /// The key or variable.
        key: String,
        /// The value as written.
        value: String,
        /// The accepted form, with an example.
        expected: &'static str,
    },
}

/// The accepted form of a duration, shared by every duration error.
pub(crate) const DURATION_FORM: &str =
    "a positive duration string such as \"30s\", \"500ms\" or \"1m 30s\"";
/// The accepted form of a factor or multiplier.
pub(crate) const FACTOR_FORM: &str = "a finite number greater than 0, such as 2.0";
