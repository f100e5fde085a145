//! A real memory cgroup smaller than the model: `gauntlet load --mode read` must refuse
//! with exit 4 and the actionable message before allocating, and must never be
//! OOM-killed. The control run with `--no-memcheck` in the same limit is OOM-killed,
//! which proves the limit was real. The harness sandbox creates the cgroup (v1 or v2),
//! joins the child before exec and removes the group afterwards, also on panic.

mod cgroup_support;

use std::process::Command;
use std::time::Duration;

use cgroup_support::memory_cgroup;
use gauntlet_engine::fixture::{Preset, WeightFormat};
use gauntlet_harness::sandbox::Sandbox;
use gauntlet_suites::fixtures;

const LIMIT: u64 = 256 << 20;

fn sandbox() -> Option<Sandbox> {
    memory_cgroup(
        Sandbox::builder()
            .memory_max(LIMIT)
            .timeout(Duration::from_secs(60)),
    )
}

fn load(model: &std::path::Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gauntlet"));
    cmd.arg("load")
        .arg(model)
        .args(["--mode", "read", "--no-progress"])
        .args(extra);
    cmd
}

#[test]
fn read_mode_below_the_model_size_exits_4_and_is_never_oom_killed() {
    let Some(sandbox) = sandbox() else { return };
    let Some(model) = fixtures::path_or_skip(Preset::Bitnet2b4t, WeightFormat::Tq2_0, 0) else {
        return;
    };
    let size = std::fs::metadata(&model).expect("fixture").len();
    assert!(
        size > 4 * LIMIT,
        "the model ({size} B) must dwarf the limit"
    );

    let refused = sandbox.run(load(&model, &[])).expect("sandboxed run");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(
        refused.exit_code,
        Some(4),
        "{}\n{stderr}",
        refused.summary()
    );
    assert!(
        !refused.oom_killed,
        "refused loads are never OOM-killed: {}",
        refused.summary()
    );
    assert!(stderr.contains("model will not fit"), "{stderr}");
    assert!(
        stderr.contains("memory.limit_in_bytes") || stderr.contains("memory.max"),
        "names the limit file: {stderr}"
    );
    assert!(
        stderr.contains("--mode mmap") && stderr.contains("--no-memcheck"),
        "{stderr}"
    );

    let forced = sandbox
        .run(load(&model, &["--no-memcheck"]))
        .expect("sandboxed run");
    assert!(
        forced.oom_killed,
        "without the check the same limit kills the load, so the limit is real: {}",
        forced.summary()
    );
}
