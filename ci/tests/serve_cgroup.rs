//! `gauntlet serve` inside a memory cgroup: started in one smaller than the model it
//! refuses at start-up with exit 4 and the pre-flight's one-line message, before binding
//! a port or mapping a tensor, instead of being OOM-killed on the first request; running
//! in one, it refuses a hot swap to a model that would not fit beside the old one and
//! keeps serving, while a swap that fits goes through.

mod cgroup_support;
mod serve_support;

use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cgroup_support::memory_cgroup;
use gauntlet_engine::fixture::{Preset, WeightFormat};
use gauntlet_harness::sandbox::{Sandbox, SandboxError, SandboxOutcome};
use gauntlet_suites::fixtures;
use serve_support::{infer, swap};

/// Far below the `small` fixture (tens of MiB), far above what the binary needs to start.
const LIMIT: u64 = 16 << 20;

#[test]
fn serve_in_a_cgroup_smaller_than_the_model_exits_4_at_start_up() {
    let Some(sandbox) = memory_cgroup(
        Sandbox::builder()
            .memory_max(LIMIT)
            .timeout(Duration::from_secs(30)),
    ) else {
        return;
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

/// Room for the server (a few MiB) and the `tiny` model, less than `small` (37 MiB):
/// the registry's swap budget (what the pre-flight allows plus the old model's
/// bytes) refuses the swap before the new model's own load is even tried.
const SWAP_LIMIT: u64 = 32 << 20;

#[test]
fn a_hot_swap_that_would_not_fit_the_cgroup_is_refused_and_the_old_model_keeps_serving() {
    let stop = Arc::new(AtomicBool::new(false));
    let Some(sandbox) = memory_cgroup(
        Sandbox::builder()
            .memory_max(SWAP_LIMIT)
            .timeout(Duration::from_secs(60))
            .cancel_on(stop.clone()),
    ) else {
        return;
    };
    let tiny = fixtures::path(Preset::Tiny, WeightFormat::Tq2_0, 0);
    let other_tiny = fixtures::path(Preset::Tiny, WeightFormat::Tq2_0, 2);
    let small = fixtures::path(Preset::Small, WeightFormat::Tq2_0, 0);
    let small_len = std::fs::metadata(&small).expect("fixture").len();
    assert!(small_len > SWAP_LIMIT / 2, "small is {small_len} B");
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    let token = "cgroup-swap-token-0123456789";
    std::fs::write(&token_file, token).expect("token file");
    // The sandbox captures stdout until exit, so the port is chosen here: a port the
    // kernel just handed out and nobody else asked for in the instant since.
    let addr: SocketAddr = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gauntlet"));
    cmd.arg("serve")
        .arg(&tiny)
        .args(["--addr", &addr.to_string()])
        .arg("--admin-token-file")
        .arg(&token_file);
    let server = Running {
        stop,
        thread: Some(std::thread::spawn(move || sandbox.run(cmd))),
    };

    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline && !server.exited(),
            "the sandboxed server did not listen on {addr} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let infer_seed_3 = || infer(addr, br#"{"seed": 3}"#);
    let first = infer_seed_3();
    assert_eq!(first.code, 200, "{}", first.body);

    let refused = swap(addr, token, &small);
    assert_eq!(refused.code, 409, "{}", refused.body);
    assert!(refused.body.contains("swap refused"), "{}", refused.body);
    let still = infer_seed_3();
    assert_eq!(
        still.code, 200,
        "the old model keeps serving: {}",
        still.body
    );
    assert_eq!(
        still.json()["output"]["checksum"],
        first.json()["output"]["checksum"],
        "same model"
    );

    // The same budget lets a model that fits through: the refusal was about size.
    let fits = swap(addr, token, &other_tiny);
    assert_eq!(fits.code, 200, "{}", fits.body);
    let after = infer_seed_3();
    assert_eq!(after.code, 200, "{}", after.body);
    assert_ne!(
        after.json()["output"]["checksum"],
        first.json()["output"]["checksum"],
        "the new model serves"
    );

    let outcome = server.stop();
    assert!(!outcome.oom_killed, "{}", outcome.summary());
}

/// The sandboxed server's thread. Dropping it (a failed assertion included) kills the
/// server's cgroup and waits for that, so no server outlives its test.
struct Running {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<SandboxOutcome, SandboxError>>>,
}

impl Running {
    fn exited(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    fn stop(mut self) -> SandboxOutcome {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .expect("running")
            .join()
            .expect("sandbox thread")
            .expect("sandboxed run")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
