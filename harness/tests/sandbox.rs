//! The sandbox against real cgroups: OOM kills, CPU quota, pid limit, timeouts, cleanup.
//!
//! Each test that needs a cgroup prints `SKIP <reason>` where none can be made and fails under
//! `GAUNTLET_REQUIRE_SANDBOX=1`.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use gauntlet_harness::sandbox::{
    Mechanism, Output, Sandbox, SandboxBuilder, SandboxError, Termination, skip_or_fail,
};

const MIB: u64 = 1 << 20;

/// A sandbox that really is a cgroup, or `None` after printing the skip line.
fn cgroup(b: SandboxBuilder) -> Option<Sandbox> {
    match b.allow_fallback(false).build() {
        Ok(s) if s.mechanism().is_cgroup() => Some(s),
        Ok(s) => {
            skip_or_fail(&format!("needs a cgroup, got {}", s.mechanism()));
            None
        }
        Err(SandboxError::Unavailable { reason }) => {
            skip_or_fail(&reason);
            None
        }
        Err(e) => panic!("building the sandbox: {e}"),
    }
}

fn sh(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", script]);
    c
}

/// True once `pid` no longer runs (gone, or a zombie waiting for init to reap it).
fn dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

#[test]
fn memory_hog_is_labelled_oom_killed_with_peak_near_the_limit() {
    let Some(sb) = cgroup(
        Sandbox::builder()
            .memory_max(64 * MIB)
            .swap_max(0)
            .timeout(Duration::from_secs(20)),
    ) else {
        return;
    };
    // `head -c` keeps the whole input in memory... not portable; dd into a shell variable is.
    // A pure-shell hog: grow a string by doubling until the limit is hit.
    let o = sb
        .run(sh("x=0123456789abcdef; while :; do x=\"$x$x\"; done"))
        .unwrap();
    assert_eq!(o.termination, Termination::OomKilled, "{}", o.summary());
    assert!(o.oom_killed && !o.timed_out);
    assert_eq!(o.signal, Some(libc::SIGKILL));
    let peak = o.peak_memory_bytes.expect("cgroups report a peak");
    assert!(
        (48 * MIB..=66 * MIB).contains(&peak),
        "peak {peak} should be near the 64 MiB limit"
    );
    assert!(o.summary().contains("OOM killer"), "{}", o.summary());
}

#[test]
fn cpu_quota_of_half_a_core_gives_about_half_a_cpu_second_per_second() {
    let Some(sb) = cgroup(
        Sandbox::builder()
            .cpus(0.5)
            .timeout(Duration::from_millis(1500)),
    ) else {
        return;
    };
    let o = sb.run(sh("while :; do :; done")).unwrap();
    assert_eq!(o.termination, Termination::TimedOut, "{}", o.summary());
    let ratio = o.cpu_time_s / o.wall_s;
    // The quota caps the loop at 0.5 CPU-seconds per second; unlimited it would take a whole
    // core on an idle machine, so the cap is what this asserts. A machine busier than the quota
    // gives the loop less anyway (the kernel then reports no throttling), so there is no lower
    // bound beyond "it ran".
    assert!(
        (0.05..=0.6).contains(&ratio),
        "cpu {:.3}s over wall {:.3}s = {ratio:.3}; {}",
        o.cpu_time_s,
        o.wall_s,
        o.summary()
    );
    assert!(
        o.cpu_throttled_s.is_some(),
        "a CPU quota reports its throttle time"
    );
}

#[test]
fn pid_limit_stops_a_process_starting_64_children() {
    let Some(sb) = cgroup(
        Sandbox::builder()
            .pids_max(16)
            .timeout(Duration::from_secs(10)),
    ) else {
        return;
    };
    let script = "n=0; for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 \
                  28 29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 \
                  56 57 58 59 60 61 62 63 64; do (sleep 30) 2>/dev/null & n=$((n+1)); done; echo started=$n";
    let o = sb.run(sh(script)).unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    let started: Option<u32> = out
        .trim()
        .strip_prefix("started=")
        .and_then(|n| n.parse().ok());
    // Either the shell gave up at the first failed fork, or it counted attempts; either way far
    // fewer than 64 processes may exist, and the fork failure must show.
    assert!(
        started.is_none_or(|n| n < 64) || err.to_lowercase().contains("fork"),
        "all 64 children started: stdout {out:?} stderr {err:?}"
    );
    assert!(
        err.to_lowercase().contains("fork"),
        "no fork failure reported: {err:?}"
    );
    assert!(!o.timed_out, "{}", o.summary());
}

#[test]
fn timeout_kills_the_whole_group_grandchildren_included() {
    let Some(sb) = cgroup(Sandbox::builder().timeout(Duration::from_millis(300))) else {
        return;
    };
    let started = Instant::now();
    let o = sb
        .run(sh("sleep 100 & echo $!; sleep 100 & echo $!; wait"))
        .unwrap();
    assert_eq!(o.termination, Termination::TimedOut, "{}", o.summary());
    assert!(o.timed_out && o.wall_s < 2.0, "{}", o.summary());
    assert!(started.elapsed() < Duration::from_secs(5));
    let pids: Vec<i32> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert_eq!(
        pids.len(),
        2,
        "stdout: {:?}",
        String::from_utf8_lossy(&o.stdout)
    );
    for pid in pids {
        assert!(dead(pid), "grandchild sleep {pid} survived the timeout");
    }
    let group = o.cgroup.expect("a cgroup run names its group");
    assert!(!Path::new(&group).exists(), "{group} left behind");
}

#[test]
fn processes_left_behind_after_a_normal_exit_are_killed_too() {
    let Some(sb) = cgroup(Sandbox::builder().timeout(Duration::from_secs(10))) else {
        return;
    };
    let o = sb.run(sh("sleep 100 >/dev/null 2>&1 & echo $!")).unwrap();
    assert_eq!(
        o.termination,
        Termination::Exited { code: 0 },
        "{}",
        o.summary()
    );
    let pid: i32 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    assert!(dead(pid), "background sleep {pid} outlived its sandbox");
}

#[test]
fn hundred_runs_leave_no_cgroup_behind() {
    let Some(sb) = cgroup(
        Sandbox::builder()
            .memory_max(64 * MIB)
            .cpus(1.0)
            .pids_max(32),
    ) else {
        return;
    };
    let mut used = Vec::new();
    for i in 0..100 {
        let o = sb.run(Command::new("true")).unwrap();
        assert!(o.success(), "run {i}: {}", o.summary());
        used.push(o.cgroup.expect("a cgroup run names its group"));
    }
    used.dedup();
    assert_eq!(used.len(), 100, "every run gets a fresh group");
    let left: Vec<_> = used.iter().filter(|p| Path::new(p).exists()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn exit_codes_and_other_signals_are_labelled_as_such() {
    let Some(sb) = cgroup(Sandbox::builder().memory_max(64 * MIB)) else {
        return;
    };
    let cases = [
        ("exit 3", Termination::Exited { code: 3 }, 3),
        (
            "kill -TERM $$",
            Termination::Signaled {
                signal: libc::SIGTERM,
            },
            128 + libc::SIGTERM,
        ),
        (
            "kill -KILL $$",
            Termination::Signaled {
                signal: libc::SIGKILL,
            },
            128 + libc::SIGKILL,
        ),
    ];
    for (script, want, code) in cases {
        let o = sb.run(sh(script)).unwrap();
        assert_eq!(o.termination, want, "{script}: {}", o.summary());
        assert!(
            !o.oom_killed,
            "{script}: a plain SIGKILL is not an OOM kill"
        );
        assert_eq!(o.mirrored_exit_code(), code, "{script}");
    }
}

#[test]
fn a_missing_program_is_a_spawn_error_and_leaves_no_group() {
    let Some(sb) = cgroup(Sandbox::builder()) else {
        return;
    };
    let err = sb
        .run(Command::new("/nonexistent/gauntlet-test-program"))
        .unwrap_err();
    let SandboxError::Spawn {
        cgroup: Some(ref group),
        ..
    } = err
    else {
        panic!("expected a spawn error naming the cgroup, got {err:?}");
    };
    assert!(err.to_string().contains("gauntlet-test-program"), "{err}");
    assert!(!Path::new(group).exists(), "{group} left behind");
}

#[test]
fn output_is_captured_up_to_the_limit_and_the_rest_drained() {
    let sb = Sandbox::builder()
        .output(Output::Capture { limit: 1000 })
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    // 1 MiB of output: more than a pipe buffer, so an undrained pipe would block the writer.
    let o = sb
        .run(sh("head -c 1048576 /dev/zero | tr '\\0' a; echo done >&2"))
        .unwrap();
    assert!(o.success(), "{}", o.summary());
    assert_eq!(o.stdout.len(), 1000);
    assert_eq!(String::from_utf8_lossy(&o.stderr).trim(), "done");
}

#[test]
fn invalid_limits_are_rejected_with_what_is_accepted() {
    let cases: [(&str, SandboxBuilder); 4] = [
        ("cpus", Sandbox::builder().cpus(f64::NAN)),
        ("cpus", Sandbox::builder().cpus(0.0)),
        ("memory_max", Sandbox::builder().memory_max(0)),
        ("timeout", Sandbox::builder().timeout(Duration::ZERO)),
    ];
    for (name, b) in cases {
        match b.build() {
            Err(SandboxError::InvalidLimit {
                name: n, expected, ..
            }) => {
                assert_eq!(n, name);
                assert!(!expected.is_empty());
            }
            other => panic!("{name}: expected InvalidLimit, got {other:?}"),
        }
    }
}

#[test]
fn rlimit_fallback_states_address_space_and_unenforced_limits() {
    let sb = Sandbox::builder()
        .mechanism(Mechanism::Rlimit)
        .memory_max(512 * MIB)
        .cpus(0.5)
        .pids_max(8)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    assert_eq!(sb.mechanism(), Mechanism::Rlimit);
    let o = sb.run(sh("exit 0")).unwrap();
    assert!(o.success(), "{}", o.summary());
    assert_eq!(o.mechanism, Mechanism::Rlimit);
    assert!(
        o.unenforced.iter().any(|u| u.starts_with("cpus")),
        "{:?}",
        o.unenforced
    );
    assert!(
        o.unenforced.iter().any(|u| u.starts_with("pids_max")),
        "{:?}",
        o.unenforced
    );
    assert!(
        o.peak_memory_bytes.is_some_and(|p| p > 0),
        "rusage gives a peak RSS"
    );
}

#[test]
fn rlimit_timeout_kills_the_process_group() {
    let sb = Sandbox::builder()
        .mechanism(Mechanism::Rlimit)
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let o = sb.run(sh("sleep 100 & echo $!; sleep 100")).unwrap();
    assert_eq!(o.termination, Termination::TimedOut, "{}", o.summary());
    let pid: i32 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    assert!(dead(pid), "grandchild {pid} survived");
}

#[test]
fn stale_group_of_a_dead_process_is_swept() {
    let Some(sb) = cgroup(Sandbox::builder()) else {
        return;
    };
    // A group of ours tells us the parent directory; a reaped child's pid is a dead owner.
    let o = sb.run(Command::new("true")).unwrap();
    let parent = Path::new(o.cgroup.as_deref().unwrap())
        .parent()
        .unwrap()
        .to_path_buf();
    let mut child = Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let stale = parent.join(format!("gauntlet-{dead_pid}-0"));
    std::fs::create_dir(&stale).unwrap();
    assert!(gauntlet_harness::sandbox::sweep_stale() >= 1);
    assert!(!stale.exists(), "{} was not swept", stale.display());
}
