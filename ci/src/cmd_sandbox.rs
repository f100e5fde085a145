//! `gauntlet sandbox`: run one command under memory, CPU, pid and time limits and say how it ended.
//!
//! The exit status mirrors the command (128 + signal when it was killed, as a shell reports it),
//! so it can wrap anything, including a test binary. Its own failures use the codes of
//! `env`/`timeout`: 125 when no sandbox could be made, 126 when the command cannot be executed,
//! 127 when it is not found.
//!
//! # As a nextest wrapper for memory-heavy tests
//!
//! nextest (0.9.98 or later; wrapper scripts are experimental there) runs a wrapper as
//! `<wrapper command> <test binary> <args…>`, so this command only needs a trailing `--`:
//!
//! ```toml
//! nextest-version = { required = "0.9.98" }
//! experimental = ["wrapper-scripts"]
//!
//! [scripts.wrapper.sandbox-2g]
//! command = { command-line = "debug/gauntlet sandbox --memory-max 2GiB --swap-max 0 --", relative-to = "target" }
//!
//! [[profile.default.scripts]]
//! filter = 'test(/memory_heavy|single_flight/)'
//! run-wrapper = 'sandbox-2g'
//! ```
//!
//! A test that outgrows the limit then fails with `gauntlet sandbox: killed by the OOM killer at
//! the memory limit (2048.0 MiB); peak memory …` on stderr instead of a bare "signal 9", and the
//! runner itself is never taken down. On SIGINT/SIGTERM/SIGHUP the wrapper kills the group and
//! still reports and removes it; only a SIGKILL of the wrapper leaves a group behind, which the
//! next run sweeps.

use std::{
    ffi::OsString,
    io::Write,
    process::{Command, ExitCode},
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use clap::Args;
use gauntlet_harness::sandbox::{Limits, Output, Sandbox, SandboxError};

/// No sandbox mechanism could be set up (or the arguments to it were wrong).
const SANDBOX_FAILED: u8 = 125;
/// The command exists but could not be executed.
const NOT_EXECUTABLE: u8 = 126;
/// The command was not found.
const NOT_FOUND: u8 = 127;

/// Arguments of `gauntlet sandbox`.
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Memory limit: bytes, or a size such as 64M, 1GiB, 500MB. A bare K/M/G/T suffix is binary
    /// (64M = 64 MiB), as in the kernel, Docker and systemd; KB/MB/GB are decimal.
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    memory_max: Option<u64>,
    /// Swap limit (same forms as --memory-max); 0 turns memory pressure into an OOM kill.
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    swap_max: Option<u64>,
    /// CPU quota in cores, e.g. 0.5 for half a core.
    #[arg(long, value_name = "CORES")]
    cpus: Option<f64>,
    /// Maximum number of processes and threads.
    #[arg(long, value_name = "N")]
    pids: Option<u64>,
    /// Wall-clock limit such as 30s, 1m30s or 500ms; the whole group is killed when it passes.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    timeout: Option<Duration>,
    /// Print the outcome as one JSON object on stdout (the command's output is captured into it).
    #[arg(long)]
    json: bool,
    /// Refuse to fall back to rlimit: require a real cgroup (direct or systemd scope).
    #[arg(long)]
    require_cgroup: bool,
    /// The command and its arguments (after `--`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    command: Vec<OsString>,
}

/// Parses `64M`, `1GiB`, `500MB`, `1048576`; bare single-letter suffixes are binary.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let binary = [('K', 10), ('M', 20), ('G', 30), ('T', 40)];
    for (suffix, shift) in binary {
        if let Some(n) = t
            .strip_suffix(suffix)
            .or_else(|| t.strip_suffix(suffix.to_ascii_lowercase()))
            && let Ok(n) = n.trim().parse::<u64>()
        {
            return n
                .checked_mul(1 << shift)
                .ok_or_else(|| format!("size {s:?} does not fit in 64 bits"));
        }
    }
    t.parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| {
            format!(
                "invalid size {s:?} ({e}); expected bytes or a size like 64M, 512MiB, 2GiB, 500MB"
            )
        })
}

/// Parses a human duration (`1s`, `500ms`, `1m30s`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration {s:?} ({e}); expected e.g. 500ms, 30s, 1m30s"))
}

static CANCEL: OnceLock<Arc<AtomicBool>> = OnceLock::new();

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic load and store: async-signal-safe.
    if let Some(flag) = CANCEL.get() {
        flag.store(true, Ordering::Relaxed);
    }
}

/// A SIGINT/SIGTERM/SIGHUP to the wrapper kills the sandboxed group (and then reports and
/// cleans up) instead of killing only the wrapper and orphaning the group.
fn forward_signals() -> Arc<AtomicBool> {
    let flag = CANCEL
        .get_or_init(|| Arc::new(AtomicBool::new(false)))
        .clone();
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: installs a handler that only touches an atomic; handlers reset on exec, so the
        // command starts with default dispositions.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            sa.sa_flags = libc::SA_RESTART;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
    flag
}

/// Runs the subcommand.
pub fn run(args: SandboxArgs) -> ExitCode {
    let limits = Limits {
        memory_max: args.memory_max,
        swap_max: args.swap_max,
        cpus: args.cpus,
        pids_max: args.pids,
        timeout: args.timeout,
    };
    let output = if args.json {
        Output::Capture {
            limit: gauntlet_harness::sandbox::DEFAULT_CAPTURE_LIMIT,
        }
    } else {
        Output::Inherit
    };
    let sandbox = match Sandbox::builder()
        .limits(limits)
        .output(output)
        .allow_fallback(!args.require_cgroup)
        .cancel_on(forward_signals())
        .build()
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gauntlet sandbox: {e}");
            return ExitCode::from(SANDBOX_FAILED);
        }
    };
    let Some((program, rest)) = args.command.split_first() else {
        eprintln!(
            "gauntlet sandbox: no command given; usage: gauntlet sandbox [OPTIONS] -- CMD..."
        );
        return ExitCode::from(SANDBOX_FAILED);
    };
    let mut cmd = Command::new(program);
    cmd.args(rest);
    let outcome = match sandbox.run(cmd) {
        Ok(o) => o,
        Err(SandboxError::Spawn {
            program, source, ..
        }) => {
            eprintln!("gauntlet sandbox: cannot run {program:?}: {source}");
            return ExitCode::from(match source.kind() {
                std::io::ErrorKind::NotFound => NOT_FOUND,
                std::io::ErrorKind::PermissionDenied => NOT_EXECUTABLE,
                _ => SANDBOX_FAILED,
            });
        }
        Err(e) => {
            eprintln!("gauntlet sandbox: {e}");
            return ExitCode::from(SANDBOX_FAILED);
        }
    };
    for u in &outcome.unenforced {
        eprintln!("gauntlet sandbox: not enforced: {u}");
    }
    if args.json {
        match serde_json::to_string(&outcome) {
            Ok(j) => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{j}");
            }
            Err(e) => eprintln!("gauntlet sandbox: cannot encode the outcome: {e}"),
        }
    } else if !outcome.success() {
        eprintln!("gauntlet sandbox: {}", outcome.summary());
    }
    // Codes above 255 cannot be an exit status; clamp rather than wrap to a false success.
    ExitCode::from(outcome.mirrored_exit_code().clamp(0, 255) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_accept_binary_shorthand_and_bytesize_forms() {
        let cases: &[(&str, Result<u64, ()>)] = &[
            ("64M", Ok(64 << 20)),
            ("64m", Ok(64 << 20)),
            ("1G", Ok(1 << 30)),
            ("512K", Ok(512 << 10)),
            ("1GiB", Ok(1 << 30)),
            ("64MiB", Ok(64 << 20)),
            ("500MB", Ok(500_000_000)),
            ("1048576", Ok(1 << 20)),
            (" 2T ", Ok(2 << 40)),
            ("lots", Err(())),
            ("64Q", Err(())),
            ("", Err(())),
            ("99999999999T", Err(())),
        ];
        for (input, want) in cases {
            let got = parse_size(input).map_err(|_| ());
            assert_eq!(&got, want, "size {input:?}");
        }
    }

    #[test]
    fn size_errors_say_which_forms_are_accepted() {
        let e = parse_size("lots").unwrap_err();
        assert!(e.contains("64M") && e.contains("GiB"), "{e}");
    }

    #[test]
    fn durations_accept_human_forms_and_reject_bare_numbers() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        let e = parse_duration("5").unwrap_err();
        assert!(e.contains("30s"), "{e}");
    }
}
