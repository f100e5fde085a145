//! Memory pre-flight: will this model fit before a single tensor byte is allocated?
//!
//! The estimate ([`ResidentEstimate`]) comes from the file's real tensor table; the
//! budget is the tightest of every memory cgroup limit from the process's cgroup up to
//! the hierarchy root (each minus that cgroup's current usage) and the host's
//! `MemAvailable`. All reads go through a [`SystemRoot`], so tests can describe any
//! machine as a directory tree.
//!
//! ```
//! use gauntlet_engine::load::LoadMode;
//! use gauntlet_engine::preflight::{check, ResidentEstimate, SystemRoot};
//!
//! let estimate = ResidentEstimate::new(LoadMode::Read, [4096, 8192], 1024);
//! let report = check(&estimate, &SystemRoot::host());
//! println!("{}", report.message());
//! ```

mod cgroup;
mod estimate;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use bytesize::ByteSize;

use crate::load::LoadMode;

pub use estimate::{FIXED_OVERHEAD, ResidentEstimate};

/// Where `/proc` and `/sys` are read from: `/` on a real host, a temporary directory in
/// tests. Paths in reports are always the logical ones (`/sys/fs/cgroup/...`), never the
/// temporary prefix, so messages read the same in both.
#[derive(Debug, Clone)]
pub struct SystemRoot {
    root: PathBuf,
}

impl SystemRoot {
    /// The real machine.
    pub fn host() -> Self {
        SystemRoot {
            root: PathBuf::from("/"),
        }
    }

    /// A directory that stands in for `/` (holding `proc/self/cgroup`, `sys/fs/cgroup/...`).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        SystemRoot { root: root.into() }
    }

    fn real(&self, logical: &Path) -> PathBuf {
        self.root.join(logical.strip_prefix("/").unwrap_or(logical))
    }

    fn read(&self, logical: impl AsRef<Path>) -> io::Result<String> {
        std::fs::read_to_string(self.real(logical.as_ref()))
    }

    fn exists(&self, logical: &Path) -> bool {
        self.real(logical).is_dir()
    }
}

/// Which kind of limit a [`LimitSource`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// cgroup v1 `memory.limit_in_bytes` (exceeding it OOM-kills).
    CgroupV1Limit,
    /// cgroup v2 `memory.max` (exceeding it OOM-kills).
    CgroupV2Max,
    /// cgroup v2 `memory.high` (exceeding it throttles and reclaims hard).
    CgroupV2High,
    /// The host's `MemAvailable` from `/proc/meminfo`.
    MemAvailable,
}

/// One memory limit that applies to this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitSource {
    /// What kind of limit.
    pub kind: LimitKind,
    /// The file it was read from (logical path).
    pub path: PathBuf,
    /// The limit in bytes.
    pub limit: u64,
    /// Bytes already in use under it, not counting reclaimable inactive file pages.
    pub usage: u64,
}

impl LimitSource {
    /// Bytes still allowed under this limit.
    pub fn available(&self) -> u64 {
        self.limit.saturating_sub(self.usage)
    }
}

/// The pre-flight verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The estimate fits under every known limit.
    Ok,
    /// The estimate exceeds what is allowed: loading would be OOM-killed (read mode) or
    /// would thrash (mmap mode). Callers refuse before allocating.
    Tight,
    /// No limit could be read (no cgroup files and no `/proc/meminfo`).
    Unknown,
}

/// The result of [`check`]: the estimate, every limit found and the verdict.
#[derive(Debug, Clone)]
pub struct Preflight {
    /// What the load needs.
    pub estimate: ResidentEstimate,
    /// Every limit found, cgroup levels first (innermost first), then `MemAvailable`.
    pub limits: Vec<LimitSource>,
    /// Why parts of the machine could not be read.
    pub notes: Vec<String>,
    /// The verdict.
    pub outcome: Outcome,
}

impl Preflight {
    /// The binding limit: the one with the least room left.
    pub fn binding(&self) -> Option<&LimitSource> {
        self.limits.iter().min_by_key(|l| l.available())
    }

    /// Bytes allowed for the load, if any limit is known.
    pub fn allowed(&self) -> Option<u64> {
        self.binding().map(LimitSource::available)
    }

    /// One line saying what is needed, what is allowed, where the limit comes from and
    /// what to do.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

fn gib(n: u64) -> String {
    ByteSize(n).display().iec().to_string()
}

impl fmt::Display for Preflight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let need = gib(self.estimate.total());
        let mode = self.estimate.mode;
        let Some(binding) = self.binding() else {
            return write!(
                f,
                "memory check unknown: needs {need} in {mode} mode but no memory limit could be read ({}); \
                 make /proc and /sys/fs/cgroup readable or pass --no-memcheck",
                self.notes.join("; ")
            );
        };
        let whence = match binding.kind {
            LimitKind::MemAvailable => format!("MemAvailable in {}", binding.path.display()),
            _ => format!(
                "limit {} in {}, {} in use",
                gib(binding.limit),
                binding.path.display(),
                gib(binding.usage)
            ),
        };
        let allowed = gib(binding.available());
        match self.outcome {
            Outcome::Ok | Outcome::Unknown => {
                write!(
                    f,
                    "memory ok: needs {need} in {mode} mode, {allowed} allowed ({whence})"
                )
            }
            Outcome::Tight => {
                let what_to_do = match (mode, binding.kind) {
                    (LoadMode::Read, LimitKind::MemAvailable) => {
                        "free memory, use --mode mmap (file pages are reclaimable), or pass --no-memcheck to try anyway"
                    }
                    (LoadMode::Read, _) => {
                        "raise the limit, use --mode mmap (file pages are reclaimable), or pass --no-memcheck to try anyway"
                    }
                    (LoadMode::Mmap, LimitKind::MemAvailable) => {
                        "free memory or pass --no-memcheck (pages will be evicted and re-read, not OOM-killed)"
                    }
                    (LoadMode::Mmap, _) => {
                        "raise the limit or pass --no-memcheck (pages will be evicted and re-read, not OOM-killed)"
                    }
                };
                write!(
                    f,
                    "model will not fit: needs {need} in {mode} mode but only {allowed} is allowed ({whence}); {what_to_do}"
                )
            }
        }
    }
}

/// Compares the estimate with every memory limit that applies to this process.
pub fn check(estimate: &ResidentEstimate, root: &SystemRoot) -> Preflight {
    let mut notes = Vec::new();
    let mut limits = cgroup::limits(root, &mut notes);
    limits.extend(cgroup::mem_available(root, &mut notes));
    let outcome = match limits.iter().map(LimitSource::available).min() {
        None => Outcome::Unknown,
        Some(allowed) if estimate.total() <= allowed => Outcome::Ok,
        Some(_) => Outcome::Tight,
    };
    Preflight {
        estimate: *estimate,
        limits,
        notes,
        outcome,
    }
}
