//! `gauntlet load` as a whole process: exit codes, messages and Ctrl-C, on the
//! `bitnet-2b4t` fixture.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gauntlet_engine::fixture::{Preset, WeightFormat};
use gauntlet_suites::fixtures;

fn gauntlet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gauntlet"))
}

/// The >1 GiB fixture, or `None` (after a `SKIP` line) where the disk lacks room.
fn bitnet() -> Option<std::path::PathBuf> {
    fixtures::path_or_skip(Preset::Bitnet2b4t, WeightFormat::Tq2_0, 0)
}

#[test]
fn one_ms_timeout_exits_3_within_a_second_naming_stage_and_progress() {
    let Some(model) = bitnet() else { return };
    let started = Instant::now();
    let out = gauntlet()
        .arg("load")
        .arg(&model)
        .args(["--timeout", "1ms", "--no-progress"])
        .output()
        .expect("runs");
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(stderr.contains("model load timed out after"), "{stderr}");
    assert!(stderr.contains("in stage '"), "names the stage: {stderr}");
    assert!(stderr.contains("GiB, "), "names the progress: {stderr}");
}

#[test]
fn default_timeout_loads_and_reports_gb_per_s() {
    let Some(model) = bitnet() else { return };
    let out = gauntlet()
        .arg("load")
        .arg(model)
        .args(["--json"])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["status"], "loaded");
    assert!(v["gb_per_s"].as_f64().is_some_and(|g| g > 0.0), "{v}");
    assert_eq!(v["tensors"], 333);
    assert!(v["memcheck"]["estimate_bytes"].as_u64().is_some(), "{v}");
}

#[test]
fn a_file_that_is_not_gguf_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("model.gguf");
    std::fs::write(&page, b"<!DOCTYPE html><html>404 Not Found</html>").expect("write");
    let out = gauntlet().arg("load").arg(&page).output().expect("runs");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_timeout_value_exits_2_naming_the_flag() {
    let out = gauntlet()
        .arg("load")
        .arg("whatever.gguf")
        .args(["--timeout", "soon"])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--timeout") && stderr.contains("\"soon\""),
        "{stderr}"
    );
}

#[test]
fn ctrl_c_during_read_cancels_and_exits_5() {
    let Some(model) = bitnet() else { return };
    let mut child = gauntlet()
        .arg("load")
        .arg(&model)
        .args(["--mode", "read", "--chunk-size", "16MiB"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The stage-change line arrives as soon as the copy starts.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|e| {
            let _ = child.kill();
            panic!("no read-stage line within 30 s ({e}): {seen:?}")
        });
        let reading = line.starts_with("load: read");
        seen.push(line);
        if reading {
            break;
        }
    }
    let sent = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    // The rest of stderr, up to the process closing it when it exits.
    let rest: Vec<String> = rx.iter().collect();
    let status = child.wait().expect("waits");
    let took = sent.elapsed();
    assert_eq!(status.code(), Some(5), "{seen:?} {rest:?}");
    assert!(took < Duration::from_secs(5), "cancel took {took:?}");
    assert!(
        rest.iter()
            .any(|l| l.contains("model load cancelled after") && l.contains("stage 'read'")),
        "{rest:?}"
    );
}
