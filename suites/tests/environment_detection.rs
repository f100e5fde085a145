//! Environment detection end to end, from fake `/proc`, `/sys` and `/dev` trees through the
//! repository's gauntlet.toml to the budget a test gets: the situations from the original bug
//! report (slow WSL2 file access, 2-core GitHub runners, GPU runners) plus a diagnostic snapshot.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gauntlet_harness::budget::{Budget, Class, Policy, Request};
use gauntlet_harness::env::{Environment, Probe, Wsl};
use gauntlet_harness::{BodyThread, Diagnostic};
use tempfile::TempDir;

fn repo_policy() -> Policy {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gauntlet.toml");
    Policy::load(&path).expect("the repository's gauntlet.toml parses")
}

fn fake_root(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, contents) in files {
        let full: PathBuf = dir.path().join(path);
        fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        fs::write(full, contents).expect("write");
    }
    dir
}

const WSL2_MOUNTS: &str = "\
22 1 8:32 / / rw,relatime - ext4 /dev/sdc rw
41 22 0:37 / /mnt/c rw,noatime - 9p drvfs rw,aname=drvfs;path=C:\\;uid=1000
";

#[test]
fn wsl2_model_on_windows_drive_gets_triple_model_loading_budget() {
    let root = fake_root(&[
        (
            "proc/sys/kernel/osrelease",
            "5.15.153.1-microsoft-standard-WSL2\n",
        ),
        ("proc/self/mountinfo", WSL2_MOUNTS),
        (
            "proc/self/status",
            "Cpus_allowed_list:\t0-7\nTracerPid:\t0\n",
        ),
    ]);
    let probe = Probe::fake(root.path()).var_set("WSL_DISTRO_NAME", "Ubuntu");
    let env = Environment::detect_with(&probe);
    assert_eq!(env.wsl, Some(Wsl::V2));
    let on_c = Request::class(Class::ModelLoading).on_path("/mnt/c/models/bitnet-2b4t.gguf");
    let budget = Budget::resolve(&on_c, &repo_policy(), &env, &probe).expect("budget");
    assert_eq!(
        budget.to_string(),
        "60s × 1.5 (wsl2) × 2.0 (wsl2-drvfs, /mnt/c on 9p) = 180s"
    );
    let on_ext4 = Request::class(Class::ModelLoading).on_path("/home/me/bitnet-2b4t.gguf");
    let budget = Budget::resolve(&on_ext4, &repo_policy(), &env, &probe).expect("budget");
    assert_eq!(budget.total, Duration::from_secs(90));
}

#[test]
fn docker_desktop_container_on_wsl2_kernel_keeps_local_budget() {
    let root = fake_root(&[
        (
            "proc/sys/kernel/osrelease",
            "5.15.153.1-microsoft-standard-WSL2\n",
        ),
        (".dockerenv", ""),
        ("proc/self/status", "Cpus_allowed_list:\t0-3\n"),
    ]);
    let probe = Probe::fake(root.path());
    let env = Environment::detect_with(&probe);
    assert_eq!((env.wsl, env.docker_desktop), (None, true));
    let budget = Budget::resolve(
        &Request::class(Class::TestDefault),
        &repo_policy(),
        &env,
        &probe,
    )
    .expect("budget");
    assert_eq!(budget.to_string(), "30s × 1.0 (local) = 30s");
}

#[test]
fn github_hosted_two_core_runner_doubles_budgets() {
    let root = fake_root(&[("proc/self/status", "Cpus_allowed_list:\t0-1\n")]);
    let probe = Probe::fake(root.path())
        .var_set("GITHUB_ACTIONS", "true")
        .var_set("RUNNER_ENVIRONMENT", "github-hosted")
        .var_set("CI", "true");
    let env = Environment::detect_with(&probe);
    let budget = Budget::resolve(
        &Request::class(Class::TestDefault),
        &repo_policy(),
        &env,
        &probe,
    )
    .expect("budget");
    assert_eq!(
        budget.to_string(),
        "30s × 2.0 (github-actions, hosted) = 60s"
    );
}

#[test]
fn self_hosted_gpu_runner_gets_gpu_initialization_budget() {
    let root = fake_root(&[
        ("dev/nvidia0", ""),
        (
            "proc/driver/nvidia/version",
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15\n",
        ),
        ("proc/self/status", "Cpus_allowed_list:\t0-15\n"),
    ]);
    let probe = Probe::fake(root.path())
        .var_set("GITHUB_ACTIONS", "true")
        .var_set("RUNNER_ENVIRONMENT", "self-hosted");
    let env = Environment::detect_with(&probe);
    let request = Request::class(Class::GpuInitialization);
    let budget = Budget::resolve(&request, &repo_policy(), &env, &probe).expect("budget");
    assert_eq!(
        budget.to_string(),
        "10s × 1.0 (github-actions, self-hosted) × 1.0 (gpu-runner, /dev/nvidia0) = 10s"
    );
}

#[test]
fn cgroup_limited_container_scales_by_cpu_quota() {
    let root = fake_root(&[
        ("proc/self/cgroup", "0::/\n"),
        ("sys/fs/cgroup/cpu.max", "100000 100000\n"),
        ("sys/fs/cgroup/memory.max", "2147483648\n"),
        ("proc/self/status", "Cpus_allowed_list:\t0-31\n"),
    ]);
    let probe = Probe::fake(root.path());
    let env = Environment::detect_with(&probe);
    let request = Request::class(Class::ModelLoading).model_size(1_300_000_000);
    let budget = Budget::resolve(&request, &repo_policy(), &env, &probe).expect("budget");
    assert_eq!(
        budget.to_string(),
        "60s × 2.0 (constrained, 1.0 usable cores) × 1.5 (constrained, memory limit 2048 MiB < 2 × model) = 180s"
    );
}

#[test]
fn timeout_diagnostic_on_detected_wsl2_runner_snapshot() {
    let root = fake_root(&[
        (
            "proc/sys/kernel/osrelease",
            "5.15.153.1-microsoft-standard-WSL2\n",
        ),
        ("proc/self/mountinfo", WSL2_MOUNTS),
        (
            "proc/self/status",
            "Cpus_allowed_list:\t0-3\nTracerPid:\t0\n",
        ),
    ]);
    let probe = Probe::fake(root.path())
        .var_set("WSL_DISTRO_NAME", "Ubuntu")
        .var_set("NEXTEST", "1")
        .var_set("NEXTEST_PROFILE", "wsl2")
        .var_set("NEXTEST_EXECUTION_MODE", "process-per-test");
    let env = Environment::detect_with(&probe);
    let request = Request::class(Class::ModelLoading).on_path("/mnt/c/models/bitnet-2b4t.gguf");
    let budget = Budget::resolve(&request, &repo_policy(), &env, &probe).expect("budget");
    let diagnostic = Diagnostic {
        test: "loading::model_loading_large_gguf_file".into(),
        elapsed: budget.total + Duration::from_millis(3),
        budget,
        stages: vec![(
            Duration::from_millis(1),
            "open /mnt/c/models/bitnet-2b4t.gguf".into(),
        )],
        progress: Some((
            Duration::from_secs(170),
            "prefault 655 MiB of 1.1 GiB".into(),
        )),
        facts: env.facts(),
        body_thread: BodyThread::EndsWithProcess,
    };
    insta::assert_snapshot!(diagnostic.to_string());
}
