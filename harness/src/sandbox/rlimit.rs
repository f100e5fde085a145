//! The last-resort mechanism: `setrlimit(RLIMIT_AS)` in the child.
//!
//! This limits **address space**, not resident memory: a process that reserves more than it
//! touches (JIT runtimes, sanitizers, large mmaps of files) fails early, one that touches pages
//! slowly is not stopped by RSS. Allocations fail instead of an OOM kill, so the outcome reads as
//! an allocation failure. CPU and process-count limits cannot be expressed per process tree with
//! rlimits (`RLIMIT_NPROC` counts every process of the user, and root ignores it), so they are
//! reported unenforced.

use std::{io, os::unix::process::CommandExt, process::Command};

use super::Limits;

pub(crate) fn apply(cmd: &mut Command, limits: &Limits, unenforced: &mut Vec<String>) {
    if limits.cpus.is_some() {
        unenforced.push("cpus: rlimit cannot limit a CPU rate".into());
    }
    if limits.pids_max.is_some() {
        unenforced
            .push("pids_max: rlimit cannot limit a process tree (RLIMIT_NPROC is per user)".into());
    }
    if limits.swap_max.is_some() {
        unenforced.push("swap_max: rlimit has no notion of swap".into());
    }
    if let Some(bytes) = limits.memory_max {
        let lim = libc::rlimit {
            rlim_cur: bytes as libc::rlim_t,
            rlim_max: bytes as libc::rlim_t,
        };
        // SAFETY: setrlimit(2) is async-signal-safe and `lim` is a plain value moved in.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_AS, &lim) == 0 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            });
        }
    }
}
