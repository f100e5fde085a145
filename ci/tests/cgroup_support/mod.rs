//! Shared by the suites that run `gauntlet` inside a real memory cgroup (`load_cgroup`,
//! `serve_cgroup`): the sandbox, or the `SKIP` line where this machine cannot make one.

use gauntlet_harness::sandbox::{Sandbox, SandboxBuilder, skip_or_fail};

/// `builder` as a real memory cgroup without swap (no fallback: a limit nothing enforces
/// would prove nothing), or `None` after the `SKIP` line where this machine cannot make
/// one (a failure instead under `GAUNTLET_REQUIRE_SANDBOX=1`).
pub fn memory_cgroup(builder: SandboxBuilder) -> Option<Sandbox> {
    match builder.swap_max(0).allow_fallback(false).build() {
        Ok(s) if s.mechanism().is_cgroup() => Some(s),
        Ok(s) => {
            skip_or_fail(&format!("no cgroup here (only {})", s.mechanism().as_str()));
            None
        }
        Err(e) => {
            skip_or_fail(&format!("cannot create a memory cgroup: {e}"));
            None
        }
    }
}
