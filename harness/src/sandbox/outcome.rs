//! The result of one sandboxed run, in Rust and as JSON.

use serde::Serialize;

use super::{Limits, Termination};

/// Which mechanism enforced the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Mechanism {
    /// A cgroup made directly on a cgroup v1 hierarchy.
    #[serde(rename = "cgroup-v1")]
    CgroupV1,
    /// A cgroup made directly in the cgroup v2 hierarchy (as root or in a delegated subtree).
    #[serde(rename = "cgroup-v2")]
    CgroupV2,
    /// A transient scope made by `systemd-run --user --scope`.
    #[serde(rename = "systemd-run")]
    SystemdRun,
    /// `setrlimit(RLIMIT_AS)`: limits address space, not resident memory; no CPU or pid limits.
    #[serde(rename = "rlimit")]
    Rlimit,
}

impl Mechanism {
    /// The name used in JSON and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::CgroupV1 => "cgroup-v1",
            Mechanism::CgroupV2 => "cgroup-v2",
            Mechanism::SystemdRun => "systemd-run",
            Mechanism::Rlimit => "rlimit",
        }
    }

    /// Whether memory is limited and accounted as resident memory by a cgroup.
    pub fn is_cgroup(self) -> bool {
        !matches!(self, Mechanism::Rlimit)
    }
}

impl std::fmt::Display for Mechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one sandboxed run ended and what it used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SandboxOutcome {
    /// The precise label; the flat fields below say the same in parts.
    pub termination: Termination,
    /// Exit code when the command exited on its own.
    pub exit_code: Option<i32>,
    /// Signal number when the command was killed by a signal.
    pub signal: Option<i32>,
    /// True when the kernel's OOM killer killed a process in the group (not only the command
    /// itself: a grandchild counts too; see [`SandboxOutcome::termination`] for the command).
    pub oom_killed: bool,
    /// True when the sandbox killed the group because the timeout passed.
    pub timed_out: bool,
    /// Highest memory use of the group in bytes (cgroup counters: resident + page cache); under
    /// rlimit the highest resident set of the command or a waited-for descendant. `None` where the
    /// kernel has no such counter (cgroup v2 before Linux 5.19).
    pub peak_memory_bytes: Option<u64>,
    /// CPU time used by the whole group (user + system), in seconds.
    pub cpu_time_s: f64,
    /// Time the group spent throttled by the CPU quota, in seconds (`None` without a quota or
    /// outside cgroups).
    pub cpu_throttled_s: Option<f64>,
    /// Wall-clock time from spawn until the command ended, in seconds.
    pub wall_s: f64,
    /// Captured stdout (empty with [`super::Output::Inherit`]).
    #[serde(serialize_with = "lossy")]
    pub stdout: Vec<u8>,
    /// Captured stderr (empty with [`super::Output::Inherit`]).
    #[serde(serialize_with = "lossy")]
    pub stderr: Vec<u8>,
    /// The mechanism that enforced the limits.
    pub mechanism: Mechanism,
    /// Limits that were asked for but not enforced by this mechanism, each with the reason.
    pub unenforced: Vec<String>,
    /// The limits asked for.
    pub limits: Limits,
    /// The cgroup directory the run used (memory hierarchy on v1); removed when `run` returns.
    pub cgroup: Option<String>,
}

impl SandboxOutcome {
    /// Exit status a wrapper should mirror: the code, or 128 + signal when killed.
    pub fn mirrored_exit_code(&self) -> i32 {
        match (self.exit_code, self.signal) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            (None, None) => 128,
        }
    }

    /// Whether the command exited with code 0 and nothing in the group was OOM-killed.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.oom_killed && !self.timed_out
    }

    /// One human line: what happened, the peak, CPU and wall time, the mechanism.
    pub fn summary(&self) -> String {
        let what = match &self.termination {
            Termination::TimedOut => format!(
                "timed out after {:.2}s (limit {}) and the whole group was killed",
                self.wall_s,
                self.limits
                    .timeout
                    .map_or("?".into(), |t| humantime::format_duration(t).to_string())
            ),
            Termination::OomKilled => format!(
                "killed by the OOM killer at the memory limit ({})",
                self.limits.memory_max.map_or("?".into(), mib)
            ),
            Termination::AllocationFailure { marker } => {
                format!("an allocation failed (stderr shows {marker:?})")
            }
            Termination::Signaled { signal } => format!("killed by signal {signal}"),
            Termination::Exited { code } => format!("exited with code {code}"),
        };
        let peak = self.peak_memory_bytes.map_or("unknown".into(), mib);
        format!(
            "{what}; peak memory {peak}, cpu {:.2}s, wall {:.2}s [{}]",
            self.cpu_time_s, self.wall_s, self.mechanism
        )
    }
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
}

fn lossy<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}

/// Durations as fractional seconds in JSON, `null` when unset.
pub(crate) mod opt_duration_s {
    use std::time::Duration;

    pub(crate) fn serialize<S: serde::Serializer>(
        d: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(
        termination: Termination,
        exit_code: Option<i32>,
        signal: Option<i32>,
    ) -> SandboxOutcome {
        SandboxOutcome {
            termination,
            exit_code,
            signal,
            oom_killed: false,
            timed_out: false,
            peak_memory_bytes: Some(64 << 20),
            cpu_time_s: 0.25,
            cpu_throttled_s: None,
            wall_s: 0.5,
            stdout: b"out".to_vec(),
            stderr: vec![0xff, b'x'],
            mechanism: Mechanism::CgroupV1,
            unenforced: vec![],
            limits: Limits {
                memory_max: Some(64 << 20),
                ..Limits::default()
            },
            cgroup: None,
        }
    }

    #[test]
    fn mirrored_exit_code_is_code_or_128_plus_signal() {
        assert_eq!(
            outcome(Termination::Exited { code: 3 }, Some(3), None).mirrored_exit_code(),
            3
        );
        assert_eq!(
            outcome(Termination::OomKilled, None, Some(9)).mirrored_exit_code(),
            137
        );
    }

    #[test]
    fn json_has_the_outcome_keys_and_mechanism_name() {
        let v = serde_json::to_value(outcome(Termination::OomKilled, None, Some(9))).unwrap();
        for key in [
            "exit_code",
            "signal",
            "oom_killed",
            "timed_out",
            "peak_memory_bytes",
            "cpu_time_s",
            "wall_s",
            "stdout",
            "stderr",
            "mechanism",
            "termination",
            "unenforced",
            "limits",
        ] {
            assert!(v.get(key).is_some(), "missing key {key} in {v}");
        }
        assert_eq!(v["mechanism"], "cgroup-v1");
        assert_eq!(
            v["stderr"], "\u{fffd}x",
            "invalid UTF-8 is replaced, not an error"
        );
        assert_eq!(v["limits"]["timeout"], serde_json::Value::Null);
    }

    #[test]
    fn summary_names_the_oom_kill_and_the_peak() {
        let s = outcome(Termination::OomKilled, None, Some(9)).summary();
        assert!(
            s.contains("OOM killer") && s.contains("64.0 MiB") && s.contains("cgroup-v1"),
            "{s}"
        );
    }
}
