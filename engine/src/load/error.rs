//! Why a load stopped.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;

use super::progress::Stage;
use crate::gguf::GgufError;
use crate::preflight::Preflight;

/// Why a load did not produce a model. Every variant says where it stopped.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The deadline expired; at most one more chunk ran after it and everything the load
    /// held (mapping, buffers, descriptors) has been released.
    #[error(
        "model load timed out after {} in stage '{stage}' ({}); budget {}: raise --timeout or GAUNTLET_MODEL_LOAD_TIMEOUT, or check the storage's speed",
        Secs(*elapsed), Progress(*bytes_done, *bytes_total), Secs(*budget)
    )]
    TimedOut {
        /// Stage at expiry.
        stage: Stage,
        /// File bytes done at expiry.
        bytes_done: u64,
        /// File length.
        bytes_total: u64,
        /// Time spent.
        elapsed: Duration,
        /// The budget that expired.
        budget: Duration,
    },
    /// The cancellation token fired; the same release guarantees as `TimedOut`.
    #[error(
        "model load cancelled after {} in stage '{stage}' ({})",
        Secs(*elapsed), Progress(*bytes_done, *bytes_total)
    )]
    Cancelled {
        /// Stage when cancelled.
        stage: Stage,
        /// File bytes done when cancelled.
        bytes_done: u64,
        /// File length.
        bytes_total: u64,
        /// Time spent.
        elapsed: Duration,
    },
    /// The file is not a valid GGUF model.
    #[error("{source}")]
    Invalid {
        /// The parser's error (names the offset and the key or tensor).
        #[from]
        source: GgufError,
    },
    /// The source ended before the length it announced.
    #[error(
        "{what} ended after {got} of {expected} bytes in stage '{stage}'; help: the file is truncated or the source closed early"
    )]
    Truncated {
        /// The file path or "reader".
        what: String,
        /// Stage when it ended.
        stage: Stage,
        /// Bytes actually delivered.
        got: u64,
        /// Bytes announced.
        expected: u64,
    },
    /// The memory pre-flight refused the load before anything was allocated.
    #[error("{preflight}")]
    WontFit {
        /// The full pre-flight report.
        preflight: Box<Preflight>,
    },
    /// Reading, mapping or populating failed.
    #[error("{what}: {source} (stage '{stage}')")]
    Io {
        /// The file path or "reader".
        what: String,
        /// Stage of the failure.
        stage: Stage,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The path is not a regular file (a directory, FIFO, device).
    #[error("{}: is a {kind}, not a regular file; help: pass the model file itself, or use a reader for streams", path.display())]
    NotRegularFile {
        /// The path.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// The blocking task died (a panic in a progress sink, for instance).
    #[error("the loader task failed: {0}")]
    Task(String),
}

impl LoadError {
    /// The stage a stop happened in (the memory check runs at the end of `tensor_index`).
    pub fn stage(&self) -> Option<Stage> {
        match self {
            LoadError::TimedOut { stage, .. }
            | LoadError::Cancelled { stage, .. }
            | LoadError::Truncated { stage, .. }
            | LoadError::Io { stage, .. } => Some(*stage),
            LoadError::WontFit { .. } => Some(Stage::TensorIndex),
            _ => None,
        }
    }
}

/// Seconds with one decimal, or milliseconds below a second.
pub(crate) struct Secs(pub Duration);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_secs_f64();
        if s >= 1.0 {
            write!(f, "{s:.1}s")
        } else {
            write!(f, "{:.1}ms", s * 1000.0)
        }
    }
}

/// "1.2 GiB of 2.0 GiB, 60%".
pub(crate) struct Progress(pub u64, pub u64);

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Progress(done, total) = *self;
        let pct = if total == 0 {
            0
        } else {
            (u128::from(done) * 100 / u128::from(total)) as u64
        };
        write!(
            f,
            "{} of {}, {pct}%",
            ByteSize(done).display().iec(),
            ByteSize(total).display().iec()
        )
    }
}
