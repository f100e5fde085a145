//! Run a command under memory, CPU, process-count and time limits, and say precisely how it ended.
//!
//! A [`Sandbox`] puts the child into its own `gauntlet-<pid>-<n>` cgroup *before* the child
//! executes (a `pre_exec` hook writes the child's pid into `cgroup.procs`), so every byte it
//! allocates and every process it starts is counted and limited. When it ends the outcome is
//! labelled from the kernel's own counters — an OOM kill (`memory.oom_control` / `memory.events`)
//! is reported as an OOM kill with its peak, not as a bare "signal 9" — and the whole group,
//! grandchildren included, is killed and the cgroup removed, also when the caller unwinds.
//!
//! Mechanisms, tried in order (see [`Mechanism`]):
//! 1. a cgroup made directly: cgroup v1 as root, or cgroup v2 as root or in a delegated subtree;
//! 2. `systemd-run --user --scope` where a user systemd instance answers;
//! 3. `setrlimit(RLIMIT_AS)`: an **address-space** limit, not a resident-memory limit (a process
//!    that maps more than it touches fails early, one that touches less than it maps passes); CPU
//!    and process-count limits are not enforced there and are listed in
//!    [`SandboxOutcome::unenforced`];
//! 4. otherwise [`SandboxError::Unavailable`] with the reason each mechanism failed.
//!
//! The crate does not use `cgroups-rs` although the workspace lists it: its v2 hierarchy is fixed
//! at `/sys/fs/cgroup` (so the v2 code cannot be tested against a fake tree), it panics on
//! unexpected contents of kernel files (`unwrap` on `memory.oom_control` fields), it has no
//! `cgroup.kill` or `memory.events` support, and it pulls in `zbus` and an async stack for its
//! systemd manager. The interface files this module needs are a dozen plain reads and writes.
//!
//! ```no_run
//! use std::{process::Command, time::Duration};
//! use gauntlet_harness::sandbox::Sandbox;
//!
//! let sandbox = Sandbox::builder()
//!     .memory_max(64 << 20)
//!     .swap_max(0)
//!     .timeout(Duration::from_secs(5))
//!     .build()?;
//! let mut cmd = Command::new("python3");
//! cmd.args(["-c", "a = bytearray(300 << 20)"]);
//! let outcome = sandbox.run(cmd)?;
//! assert!(outcome.oom_killed, "{}", outcome.summary());
//! # Ok::<(), gauntlet_harness::sandbox::SandboxError>(())
//! ```

mod cgroup_v1;
mod cgroup_v2;
mod detect;
mod group;
mod label;
mod outcome;
mod reexec;
mod rlimit;
mod spawn;
mod systemd;

use std::{
    process::Command,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

pub use label::Termination;
pub use outcome::{Mechanism, SandboxOutcome};
#[doc(hidden)]
pub use reexec::{INSIDE_ENV, ReexecResult, current_test_name, reexec_current_test, skip_or_fail};

/// Environment variable that turns a skipped sandbox test into a failure (set it in CI where
/// cgroups can be made).
pub const REQUIRE_ENV: &str = "GAUNTLET_REQUIRE_SANDBOX";

/// Environment variable forcing one mechanism: `cgroup`, `systemd-run` or `rlimit`.
///
/// Exists so the fallbacks can be exercised on a machine where a better mechanism works.
pub const MECHANISM_ENV: &str = "GAUNTLET_SANDBOX_MECHANISM";

/// Environment variable naming the cgroup directory under which groups are made (absolute path on
/// a cgroup2 mount, or on the v1 memory hierarchy). Default: the parent of the caller's own cgroup
/// on v2 (the delegated subtree), the caller's own cgroup in each hierarchy on v1.
pub const PARENT_ENV: &str = "GAUNTLET_CGROUP_PARENT";

/// Limits applied to the sandboxed command. `None` means "not limited".
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Limits {
    /// Memory limit in bytes (`memory.max` / `memory.limit_in_bytes`; `RLIMIT_AS` under rlimit).
    pub memory_max: Option<u64>,
    /// Swap limit in bytes (`memory.swap.max`; on v1 the memory+swap limit is set to
    /// `memory_max + swap_max`).
    pub swap_max: Option<u64>,
    /// CPU quota in cores, e.g. `0.5` for half of one core.
    pub cpus: Option<f64>,
    /// Maximum number of processes and threads in the group.
    pub pids_max: Option<u64>,
    /// Wall-clock limit; on expiry the whole group is killed.
    #[serde(with = "outcome::opt_duration_s")]
    pub timeout: Option<Duration>,
}

/// Where the child's stdout and stderr go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Collected into [`SandboxOutcome::stdout`] / [`SandboxOutcome::stderr`], keeping at most
    /// this many bytes of each (the rest is read and dropped so the child never blocks).
    Capture {
        /// Bytes kept per stream.
        limit: usize,
    },
    /// Passed through to the caller's own stdout/stderr (what a nextest wrapper wants); stdin is
    /// inherited too.
    Inherit,
}

/// Errors from building or running a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// No mechanism can enforce limits here; `reason` says what each one lacked.
    #[error("no sandbox mechanism is available: {reason}")]
    Unavailable {
        /// Why each mechanism was rejected, and what would make one work.
        reason: String,
    },
    /// A limit is out of range.
    #[error("invalid sandbox limit {name} = {value}: {expected}")]
    InvalidLimit {
        /// The limit's builder name, e.g. `cpus`.
        name: &'static str,
        /// The value given.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// Making, configuring or removing the cgroup failed.
    #[error("cgroup {path}: {action} failed: {source}")]
    Cgroup {
        /// The cgroup file or directory.
        path: String,
        /// What was being done (`create`, `write memory.max`, ...).
        action: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The command could not be started (not found, not executable, or joining the cgroup failed).
    #[error("could not start {program:?}{}: {source}", cgroup.as_ref().map(|c| format!(" in cgroup {c}")).unwrap_or_default())]
    Spawn {
        /// The program as given.
        program: String,
        /// The cgroup it was to join (already removed again), if any.
        cgroup: Option<String>,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Waiting for the child failed, or it did not die within the bound after being killed.
    #[error("waiting for the sandboxed child (pid {pid}) failed: {detail}")]
    Wait {
        /// The child's pid.
        pid: u32,
        /// What went wrong.
        detail: String,
    },
}

/// Builds a [`Sandbox`]; start with [`Sandbox::builder`].
#[derive(Debug, Clone)]
pub struct SandboxBuilder {
    limits: Limits,
    output: Output,
    allow_fallback: bool,
    forced: Option<Mechanism>,
    cancel: Option<Arc<AtomicBool>>,
}

/// A reusable set of limits bound to a mechanism; each [`Sandbox::run`] gets a fresh cgroup.
#[derive(Debug, Clone)]
pub struct Sandbox {
    limits: Limits,
    output: Output,
    plan: detect::Plan,
    cancel: Option<Arc<AtomicBool>>,
}

/// Default bytes kept per captured stream: enough for any test's diagnostics, bounded so a
/// runaway writer cannot exhaust the caller's memory.
pub const DEFAULT_CAPTURE_LIMIT: usize = 16 << 20;

impl SandboxBuilder {
    /// Limits memory to `bytes` (resident memory under cgroups; address space under rlimit).
    pub fn memory_max(mut self, bytes: u64) -> Self {
        self.limits.memory_max = Some(bytes);
        self
    }

    /// Limits swap to `bytes`; `0` makes memory pressure end in an OOM kill instead of swapping.
    pub fn swap_max(mut self, bytes: u64) -> Self {
        self.limits.swap_max = Some(bytes);
        self
    }

    /// Limits CPU to `cores` cores' worth of time per period (`0.5` = half a core).
    pub fn cpus(mut self, cores: f64) -> Self {
        self.limits.cpus = Some(cores);
        self
    }

    /// Limits the number of processes and threads in the group.
    pub fn pids_max(mut self, n: u64) -> Self {
        self.limits.pids_max = Some(n);
        self
    }

    /// Kills the whole group when the command runs longer than `d`.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.limits.timeout = Some(d);
        self
    }

    /// Replaces all limits at once.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Chooses where output goes (default: captured, [`DEFAULT_CAPTURE_LIMIT`] bytes per stream).
    pub fn output(mut self, output: Output) -> Self {
        self.output = output;
        self
    }

    /// With `false`, only a real cgroup (direct or systemd scope) is accepted; `build` returns
    /// [`SandboxError::Unavailable`] instead of falling back to rlimit. Tests that assert on OOM
    /// kills or CPU quotas want this.
    pub fn allow_fallback(mut self, allow: bool) -> Self {
        self.allow_fallback = allow;
        self
    }

    /// Uses only `mechanism` (`CgroupV1` and `CgroupV2` both mean "a direct cgroup"), failing
    /// with [`SandboxError::Unavailable`] when it does not work here. Overrides
    /// `GAUNTLET_SANDBOX_MECHANISM`.
    pub fn mechanism(mut self, mechanism: Mechanism) -> Self {
        self.forced = Some(mechanism);
        self
    }

    /// When `flag` becomes true the whole group is killed (checked every 50 ms); the outcome then
    /// reads as killed by `SIGKILL`. Lets a CLI forward its own SIGINT/SIGTERM.
    pub fn cancel_on(mut self, flag: Arc<AtomicBool>) -> Self {
        self.cancel = Some(flag);
        self
    }

    /// Checks the limits and picks the first mechanism that works here.
    pub fn build(self) -> Result<Sandbox, SandboxError> {
        validate(&self.limits)?;
        let plan = detect::choose(&self.limits, self.allow_fallback, self.forced)?;
        Ok(Sandbox {
            limits: self.limits,
            output: self.output,
            plan,
            cancel: self.cancel,
        })
    }
}

fn validate(limits: &Limits) -> Result<(), SandboxError> {
    if let Some(c) = limits.cpus
        && !(c.is_finite() && c >= 0.01)
    {
        return Err(SandboxError::InvalidLimit {
            name: "cpus",
            value: c.to_string(),
            expected: "a finite number of cores >= 0.01, e.g. 0.5",
        });
    }
    if limits.memory_max == Some(0) {
        return Err(SandboxError::InvalidLimit {
            name: "memory_max",
            value: "0".into(),
            expected: "at least one page (e.g. 64MiB); leave it unset for no limit",
        });
    }
    if limits.pids_max == Some(0) {
        return Err(SandboxError::InvalidLimit {
            name: "pids_max",
            value: "0".into(),
            expected: "at least 1 (the command itself)",
        });
    }
    if limits.timeout == Some(Duration::ZERO) {
        return Err(SandboxError::InvalidLimit {
            name: "timeout",
            value: "0s".into(),
            expected: "a positive duration, e.g. 30s",
        });
    }
    Ok(())
}

impl Sandbox {
    /// Starts a builder with no limits, captured output and fallbacks allowed.
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder {
            limits: Limits::default(),
            output: Output::Capture {
                limit: DEFAULT_CAPTURE_LIMIT,
            },
            allow_fallback: true,
            forced: None,
            cancel: None,
        }
    }

    /// The mechanism every run of this sandbox uses.
    pub fn mechanism(&self) -> Mechanism {
        self.plan.mechanism()
    }

    /// The limits every run applies.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Cgroups of this process that exist right now (normally none between runs; a test of
    /// the cleanup looks here).
    pub fn live_groups(&self) -> Vec<std::path::PathBuf> {
        group::own_groups(&self.plan)
    }

    /// Runs `cmd` to completion (or timeout) in a fresh group and labels how it ended.
    ///
    /// Processes the command leaves behind when it exits are killed with the group: a sandbox
    /// owns everything started inside it. Stdout/stderr/stdin set on `cmd` are replaced according
    /// to [`Output`].
    pub fn run(&self, cmd: Command) -> Result<SandboxOutcome, SandboxError> {
        spawn::run(self, cmd)
    }
}

/// Whether `GAUNTLET_REQUIRE_SANDBOX=1` is set, i.e. a sandbox test must not skip.
pub fn sandbox_required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// Removes `gauntlet-*` cgroups left by processes that no longer exist (killing anything still
/// inside them first). Runs automatically once per process before the first cgroup run; exposed
/// for tools that want to tidy up explicitly. Returns how many groups were removed.
pub fn sweep_stale() -> usize {
    group::sweep_stale_now()
}
