//! The acceptance checks of `gauntlet sandbox`, run through the real binary.
//!
//! The binary is found beside this test's own directory in the target dir (`…/debug/gauntlet`),
//! which `cargo nextest run --workspace` builds; where it is missing, or no cgroup can be made,
//! each test prints `SKIP <reason>` (a failure under `GAUNTLET_REQUIRE_SANDBOX=1`).

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use gauntlet_harness::sandbox::{Sandbox, skip_or_fail};
use serde_json::Value;

const MIB: f64 = (1 << 20) as f64;

/// The `gauntlet` binary of the same build, when a cgroup can be made here.
fn gauntlet() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    // <target>/<profile>/deps/sandbox_cli-<hash> → <target>/<profile>/gauntlet
    let bin = exe.parent()?.parent()?.join("gauntlet");
    if !bin.exists() {
        skip_or_fail(&format!(
            "{} is not built (cargo build -p gauntlet)",
            bin.display()
        ));
        return None;
    }
    match Sandbox::builder().allow_fallback(false).build() {
        Ok(_) => Some(bin),
        Err(e) => {
            skip_or_fail(&e.to_string());
            None
        }
    }
}

fn python3() -> bool {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip_or_fail("python3 is not installed");
    }
    ok
}

fn run(bin: &Path, args: &[&str]) -> (Output, Value) {
    let out = Command::new(bin)
        .arg("sandbox")
        .args(args)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {:?} / stderr {:?}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, json)
}

/// The run's cgroup and any sibling of the same (now dead) wrapper are gone.
fn assert_no_group_left(o: &Value) {
    let group = PathBuf::from(o["cgroup"].as_str().expect("cgroup path in JSON"));
    assert!(!group.exists(), "{} left behind", group.display());
    let name = group.file_name().unwrap().to_string_lossy().into_owned();
    let prefix = &name[..name.rfind('-').unwrap() + 1];
    let left: Vec<_> = std::fs::read_dir(group.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .collect();
    assert!(left.is_empty(), "groups of the wrapper remain: {left:?}");
}

fn dead(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')),
    }
}

#[test]
fn python_bytearray_over_64m_is_reported_oom_killed_with_peak_near_64_mib() {
    let Some(bin) = gauntlet() else { return };
    if !python3() {
        return;
    }
    let (out, o) = run(
        &bin,
        &[
            "--memory-max",
            "64M",
            "--json",
            "--",
            "python3",
            "-c",
            "a=bytearray(300<<20)",
        ],
    );
    assert_eq!(o["oom_killed"], true, "{o}");
    assert_eq!(o["termination"]["kind"], "oom-killed", "{o}");
    let peak = o["peak_memory_bytes"].as_f64().unwrap() / MIB;
    assert!((56.0..=66.0).contains(&peak), "peak {peak:.1} MiB: {o}");
    assert!(
        matches!(o["mechanism"].as_str(), Some("cgroup-v1" | "cgroup-v2")),
        "{o}"
    );
    assert_eq!(out.status.code(), Some(128 + 9), "exit mirrors SIGKILL");
    for key in [
        "exit_code",
        "signal",
        "timed_out",
        "cpu_time_s",
        "wall_s",
        "stdout",
        "stderr",
    ] {
        assert!(o.get(key).is_some(), "JSON lacks {key}: {o}");
    }
    assert_no_group_left(&o);
}

#[test]
fn cpus_half_holds_a_busy_loop_at_or_under_half_a_core() {
    let Some(bin) = gauntlet() else { return };
    let (_, o) = run(
        &bin,
        &[
            "--cpus",
            "0.5",
            "--timeout",
            "1500ms",
            "--json",
            "--",
            "sh",
            "-c",
            "while :; do :; done",
        ],
    );
    assert_eq!(o["timed_out"], true, "{o}");
    let ratio = o["cpu_time_s"].as_f64().unwrap() / o["wall_s"].as_f64().unwrap();
    // Unlimited, the loop takes a whole core on an idle machine; the quota caps it at 0.5.
    assert!((0.05..=0.6).contains(&ratio), "cpu/wall = {ratio:.3}: {o}");
    assert_no_group_left(&o);
}

#[test]
fn pids_16_stops_a_process_trying_to_start_64_children() {
    let Some(bin) = gauntlet() else { return };
    let (out, o) = run(
        &bin,
        &[
            "--pids",
            "16",
            "--timeout",
            "10s",
            "--json",
            "--",
            "sh",
            "-c",
            "i=0; while [ $i -lt 64 ]; do sleep 30 & i=$((i+1)); done; echo all 64 started",
        ],
    );
    let stdout = o["stdout"].as_str().unwrap();
    let stderr = o["stderr"].as_str().unwrap();
    assert!(!stdout.contains("all 64 started"), "{o}");
    assert!(stderr.to_lowercase().contains("fork"), "{o}");
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(o["timed_out"], false, "{o}");
    assert_no_group_left(&o);
}

#[test]
fn timeout_1s_kills_both_sleeps() {
    let Some(bin) = gauntlet() else { return };
    let (out, o) = run(
        &bin,
        &[
            "--timeout",
            "1s",
            "--json",
            "--",
            "sh",
            "-c",
            "sleep 100 & echo $!; sleep 100 & echo $!; wait",
        ],
    );
    assert_eq!(o["timed_out"], true, "{o}");
    assert_eq!(o["termination"]["kind"], "timed-out", "{o}");
    assert_eq!(out.status.code(), Some(128 + 9));
    let pids: Vec<i64> = o["stdout"]
        .as_str()
        .unwrap()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    assert_eq!(pids.len(), 2, "{o}");
    for pid in pids {
        assert!(dead(pid), "sleep {pid} survived: {o}");
    }
    assert_no_group_left(&o);
}

#[test]
fn exit_status_mirrors_the_child_and_wrapper_failures_use_125_to_127() {
    let Some(bin) = gauntlet() else { return };
    let code = |args: &[&str]| {
        Command::new(&bin)
            .arg("sandbox")
            .args(args)
            .output()
            .unwrap()
    };
    let cases: &[(&str, &[&str], i32)] = &[
        ("exit code", &["--", "sh", "-c", "exit 7"], 7),
        ("signal", &["--", "sh", "-c", "kill -TERM $$"], 128 + 15),
        ("not found", &["--", "/nonexistent/program"], 127),
        ("bad size", &["--memory-max", "lots", "--", "true"], 2),
    ];
    for (name, args, want) in cases {
        let out = code(args);
        assert_eq!(
            out.status.code(),
            Some(*want),
            "{name}: {:?}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = code(&["--memory-max", "lots", "--", "true"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("64M") && err.contains("GiB"),
        "size error names accepted forms: {err}"
    );
}

#[test]
fn a_failed_run_prints_one_labelled_summary_line_without_json() {
    let Some(bin) = gauntlet() else { return };
    let out = Command::new(&bin)
        .args([
            "sandbox",
            "--memory-max",
            "32M",
            "--swap-max",
            "0",
            "--",
            "sh",
            "-c",
        ])
        .arg("x=0123456789abcdef; while :; do x=\"$x$x\"; done")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(137), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("gauntlet sandbox: "))
        .unwrap_or_default();
    assert!(
        line.contains("OOM killer") && line.contains("peak memory"),
        "{err}"
    );
}
