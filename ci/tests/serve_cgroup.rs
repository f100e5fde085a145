//! `gauntlet serve` started inside a memory cgroup smaller than the model refuses at
//! start-up with exit 4 and the pre-flight's one-line message, before binding a port or
//! mapping a tensor, instead of being OOM-killed on the first request.

use std::process::Command;
use std::time::Duration;

use gauntlet_engine::fixture::{Preset, WeightFormat};
use gauntlet_harness::sandbox::{Sandbox, skip_or_fail};
use gauntlet_suites::fixtures;

/// Far below the `small` fixture (tens of MiB), far above what the binary needs to start.
const LIMIT: u64 = 16 << 20;

#[test]
fn serve_in_a_cgroup_smaller_than_the_model_exits_4_at_start_up() {
    let sandbox = match Sandbox::builder()
        .memory_max(LIMIT)
        .swap_max(0)
        .timeout(Duration::from_secs(30))
        .allow_fallback(false)
        .build()
    {
        Ok(s) if s.mechanism().is_cgroup() => s,
        Ok(s) => {
            return skip_or_fail(&format!("no cgroup here (only {})", s.mechanism().as_str()));
        }
        Err(e) => return skip_or_fail(&format!("cannot create a memory cgroup: {e}")),
    };
    let model = fixtures::path(Preset::Small, WeightFormat::Tq2_0, 0);
    let size = std::fs::metadata(&model).expect("fixture").len();
    assert!(
        size > 2 * LIMIT,
        "the model ({size} B) must dwarf the limit"
    );
    for lazy in [false, true] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gauntlet"));
        cmd.arg("serve").arg(&model).args(["--addr", "127.0.0.1:0"]);
        if lazy {
            cmd.arg("--lazy-weights");
        }
        let run = sandbox.run(cmd).expect("sandboxed run");
        let stderr = String::from_utf8_lossy(&run.stderr);
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert_eq!(
            run.exit_code,
            Some(4),
            "lazy={lazy}: {}\n{stderr}",
            run.summary()
        );
        assert!(!run.oom_killed, "lazy={lazy}: {}", run.summary());
        assert!(stderr.contains("model will not fit"), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(
            !stdout.contains("listening"),
            "refused before binding: {stdout}"
        );
    }
}
