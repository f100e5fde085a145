//! Says how a sandboxed command ended, from the exit status, the group's OOM counter and stderr.

/// How the sandboxed command ended, most specific reason first.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Termination {
    /// The sandbox killed the group because the timeout passed.
    TimedOut,
    /// The kernel's OOM killer killed the command because the group hit its memory limit
    /// (the group's `oom_kill` counter went up and the command died of `SIGKILL`).
    OomKilled,
    /// The command gave up itself because an allocation failed (under rlimit the kernel refuses
    /// the mapping instead of killing): it aborted or exited non-zero and stderr shows `marker`.
    AllocationFailure {
        /// The text in stderr that identified the failure, e.g. `memory allocation of`.
        marker: String,
    },
    /// Killed by a signal that was neither the OOM killer nor the sandbox's timeout.
    Signaled {
        /// The signal number.
        signal: i32,
    },
    /// Exited on its own with this code.
    Exited {
        /// The exit code.
        code: i32,
    },
}

/// Stderr texts that mean "an allocation failed", with the runtime that prints them.
const ALLOCATION_MARKERS: &[&str] = &[
    "memory allocation of",   // Rust's default alloc error handler, then abort
    "MemoryError",            // Python
    "std::bad_alloc",         // C++
    "out of memory",          // glibc/malloc users, Go ("fatal error: runtime: out of memory")
    "Cannot allocate memory", // strerror(ENOMEM)
    "failed to allocate",     // common in C libraries and CUDA
];

/// What the classification looks at; kept separate from the OS so it can be table-tested.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Facts<'a> {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub oom_kills: u64,
    pub stderr: &'a [u8],
}

pub(crate) fn classify(f: Facts<'_>) -> Termination {
    if f.timed_out {
        return Termination::TimedOut;
    }
    if f.signal == Some(libc::SIGKILL) && f.oom_kills > 0 {
        return Termination::OomKilled;
    }
    let failed = f.signal == Some(libc::SIGABRT) || f.exit_code.is_some_and(|c| c != 0);
    if failed {
        // Only the tail matters and it bounds the search over a large capture.
        let tail = &f.stderr[f.stderr.len().saturating_sub(64 << 10)..];
        let tail = String::from_utf8_lossy(tail);
        if let Some(m) = ALLOCATION_MARKERS.iter().find(|m| tail.contains(**m)) {
            return Termination::AllocationFailure {
                marker: (*m).to_string(),
            };
        }
    }
    match (f.signal, f.exit_code) {
        (Some(signal), _) => Termination::Signaled { signal },
        (None, Some(code)) => Termination::Exited { code },
        (None, None) => Termination::Signaled { signal: 0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(
        exit: Option<i32>,
        sig: Option<i32>,
        timed_out: bool,
        oom: u64,
        err: &str,
    ) -> Termination {
        classify(Facts {
            exit_code: exit,
            signal: sig,
            timed_out,
            oom_kills: oom,
            stderr: err.as_bytes(),
        })
    }

    #[test]
    fn classification_table() {
        use Termination::*;
        let alloc = |m: &str| AllocationFailure { marker: m.into() };
        let cases: &[(&str, Termination, Termination)] = &[
            (
                "clean exit",
                facts(Some(0), None, false, 0, ""),
                Exited { code: 0 },
            ),
            (
                "failing exit",
                facts(Some(3), None, false, 0, "boom"),
                Exited { code: 3 },
            ),
            (
                "sigkill with oom counter is an oom kill",
                facts(None, Some(9), false, 1, ""),
                OomKilled,
            ),
            (
                "sigkill without oom counter is just a signal",
                facts(None, Some(9), false, 0, ""),
                Signaled { signal: 9 },
            ),
            (
                "timeout wins over the sigkill it caused",
                facts(None, Some(9), true, 0, ""),
                TimedOut,
            ),
            (
                "timeout wins even if memory also ran out",
                facts(None, Some(9), true, 2, ""),
                TimedOut,
            ),
            (
                "rust alloc abort",
                facts(
                    None,
                    Some(6),
                    false,
                    0,
                    "memory allocation of 1 bytes failed\n",
                ),
                alloc("memory allocation of"),
            ),
            (
                "python MemoryError exit",
                facts(Some(1), None, false, 0, "Traceback...\nMemoryError\n"),
                alloc("MemoryError"),
            ),
            (
                "abort without marker is a signal",
                facts(None, Some(6), false, 0, "assertion failed"),
                Signaled { signal: 6 },
            ),
            (
                "marker in a successful run is ignored",
                facts(Some(0), None, false, 0, "MemoryError"),
                Exited { code: 0 },
            ),
            (
                "child survived a grandchild's oom kill",
                facts(Some(0), None, false, 1, ""),
                Exited { code: 0 },
            ),
            (
                "sigterm",
                facts(None, Some(15), false, 0, ""),
                Signaled { signal: 15 },
            ),
        ];
        for (name, got, want) in cases {
            assert_eq!(got, want, "case: {name}");
        }
    }

    #[test]
    fn termination_serializes_with_a_kind_tag() {
        let j = serde_json::to_string(&Termination::Signaled { signal: 15 }).unwrap();
        assert_eq!(j, r#"{"kind":"signaled","signal":15}"#);
        let j = serde_json::to_string(&Termination::OomKilled).unwrap();
        assert_eq!(j, r#"{"kind":"oom-killed"}"#);
    }
}
