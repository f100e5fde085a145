//! Environment detection over fake `/proc`, `/sys` and `/dev` trees and fixed variables, one
//! case per branch, so every machine runs every branch.

use std::fs;
use std::path::Path;

use gauntlet_harness::env::{CgroupVersion, Ci, Environment, Instrumentation, Probe, Wsl};
use rstest::rstest;
use tempfile::TempDir;

/// A fake root with the given files (path relative to the root, contents).
fn tree(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, contents) in files {
        let full = dir.path().join(path);
        fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        fs::write(full, contents).expect("write");
    }
    dir
}

fn detect(root: &Path, vars: &[(&str, &str)]) -> Environment {
    let probe = vars
        .iter()
        .fold(Probe::fake(root), |p, (k, v)| p.var_set(k, v));
    Environment::detect_with(&probe)
}

#[rstest]
#[case::nothing_set_is_local(&[], None)]
#[case::github_hosted(&[("GITHUB_ACTIONS", "true"), ("RUNNER_ENVIRONMENT", "github-hosted")], Some(Ci::GithubActions { self_hosted: false }))]
#[case::github_without_runner_environment_counts_as_hosted(&[("GITHUB_ACTIONS", "true")], Some(Ci::GithubActions { self_hosted: false }))]
#[case::github_self_hosted(&[("GITHUB_ACTIONS", "true"), ("RUNNER_ENVIRONMENT", "self-hosted")], Some(Ci::GithubActions { self_hosted: true }))]
#[case::generic_ci(&[("CI", "true")], Some(Ci::Generic))]
#[case::ci_false_is_not_ci(&[("CI", "false")], None)]
#[case::ci_zero_is_not_ci(&[("CI", "0")], None)]
fn ci_detection(#[case] vars: &[(&str, &str)], #[case] expected: Option<Ci>) {
    let root = tree(&[]);
    assert_eq!(detect(root.path(), vars).ci, expected);
}

#[rstest]
#[case::wsl2_modern_kernel("5.15.153.1-microsoft-standard-WSL2", &[], &[], Some(Wsl::V2), false)]
#[case::wsl2_interim_kernel("4.19.112-microsoft-WSL2-standard", &[], &[], Some(Wsl::V2), false)]
#[case::wsl2_first_kernel_with_interop_marker("4.19.104-microsoft-standard", &["proc/sys/fs/binfmt_misc/WSLInterop"], &[], Some(Wsl::V2), false)]
#[case::wsl2_first_kernel_with_distro_var("4.19.104-microsoft-standard", &[], &[("WSL_DISTRO_NAME", "Ubuntu")], Some(Wsl::V2), false)]
#[case::bare_microsoft_kernel_without_marker_is_not_wsl("4.19.104-microsoft-standard", &[], &[], None, false)]
#[case::wsl1_kernel("4.4.0-19041-Microsoft", &[], &[], Some(Wsl::V1), false)]
#[case::docker_desktop_mac_linuxkit("6.10.14-linuxkit", &[], &[], None, true)]
#[case::docker_desktop_container_on_wsl2_kernel("5.15.153.1-microsoft-standard-WSL2", &[".dockerenv"], &[], None, true)]
#[case::podman_container_on_wsl2_kernel("5.15.153.1-microsoft-standard-WSL2", &["run/.containerenv"], &[], None, true)]
#[case::docker_desktop_distro("5.15.153.1-microsoft-standard-WSL2", &[], &[("WSL_DISTRO_NAME", "docker-desktop")], None, true)]
#[case::azure_cloud_kernel("6.5.0-1025-azure", &[], &[], None, false)]
#[case::plain_linux("6.8.0-45-generic", &[], &[], None, false)]
fn wsl_detection(
    #[case] release: &str,
    #[case] markers: &[&str],
    #[case] vars: &[(&str, &str)],
    #[case] expected: Option<Wsl>,
    #[case] docker_desktop: bool,
) {
    let mut files = vec![("proc/sys/kernel/osrelease", release)];
    files.extend(markers.iter().map(|m| (*m, "")));
    let root = tree(&files);
    let env = detect(root.path(), vars);
    assert_eq!(env.wsl, expected, "release {release}");
    assert_eq!(env.docker_desktop, docker_desktop, "release {release}");
}

#[rstest]
#[case::no_gpu(&[], &[], None)]
#[case::device_node(&["dev/nvidia0"], &[], Some("/dev/nvidia0"))]
#[case::other_device_number(&["dev/nvidia3", "dev/nvidiactl"], &[], Some("/dev/nvidia3"))]
#[case::control_device_alone_is_not_a_gpu(&["dev/nvidiactl"], &[], None)]
#[case::driver_version(&["proc/driver/nvidia/version"], &[], Some("/proc/driver/nvidia/version"))]
#[case::cuda_visible_devices(&[], &[("CUDA_VISIBLE_DEVICES", "0,1")], Some("CUDA_VISIBLE_DEVICES=0,1"))]
#[case::cuda_visible_devices_empty(&[], &[("CUDA_VISIBLE_DEVICES", "")], None)]
#[case::cuda_visible_devices_minus_one(&[], &[("CUDA_VISIBLE_DEVICES", "-1")], None)]
fn detects_gpu_runner(
    #[case] files: &[&str],
    #[case] vars: &[(&str, &str)],
    #[case] expected: Option<&str>,
) {
    let files: Vec<(&str, &str)> = files.iter().map(|f| (*f, "")).collect();
    let root = tree(&files);
    assert_eq!(detect(root.path(), vars).gpu.as_deref(), expected);
}

const MIB: u64 = 1024 * 1024;

#[rstest]
#[case::v2_quota_and_memory(
    &[("proc/self/cgroup", "0::/user.slice/test\n"),
      ("sys/fs/cgroup/user.slice/test/cpu.max", "150000 100000\n"),
      ("sys/fs/cgroup/user.slice/test/memory.max", "536870912\n")],
    Some(CgroupVersion::V2), Some(1.5), Some(512 * MIB))]
#[case::v2_unlimited(
    &[("proc/self/cgroup", "0::/\n"), ("sys/fs/cgroup/cpu.max", "max 100000\n"), ("sys/fs/cgroup/memory.max", "max\n")],
    Some(CgroupVersion::V2), None, None)]
#[case::v2_container_namespace_reads_mount_root(
    &[("proc/self/cgroup", "0::/docker/abc123\n"), ("sys/fs/cgroup/cpu.max", "50000 100000\n")],
    Some(CgroupVersion::V2), Some(0.5), None)]
#[case::v2_parent_limit_is_tighter(
    &[("proc/self/cgroup", "0::/a/b\n"),
      ("sys/fs/cgroup/a/b/cpu.max", "400000 100000\n"),
      ("sys/fs/cgroup/a/cpu.max", "100000 100000\n")],
    Some(CgroupVersion::V2), Some(1.0), None)]
#[case::v1_quota_and_memory(
    &[("proc/self/cgroup", "12:memory:/job\n4:cpu,cpuacct:/job\n1:name=systemd:/job\n"),
      ("sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_quota_us", "200000\n"),
      ("sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_period_us", "100000\n"),
      ("sys/fs/cgroup/memory/job/memory.limit_in_bytes", "1073741824\n")],
    Some(CgroupVersion::V1), Some(2.0), Some(1024 * MIB))]
#[case::v1_unlimited(
    &[("proc/self/cgroup", "12:memory:/\n4:cpu,cpuacct:/\n"),
      ("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n"),
      ("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n"),
      ("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n")],
    Some(CgroupVersion::V1), None, None)]
#[case::no_cgroup_file(&[], None, None, None)]
#[case::garbage_is_ignored(
    &[("proc/self/cgroup", "0::/\n"), ("sys/fs/cgroup/cpu.max", "lots\n"), ("sys/fs/cgroup/memory.max", "-5\n")],
    Some(CgroupVersion::V2), None, None)]
fn cgroup_limits(
    #[case] files: &[(&str, &str)],
    #[case] version: Option<CgroupVersion>,
    #[case] quota: Option<f64>,
    #[case] memory: Option<u64>,
) {
    let root = tree(files);
    let env = detect(root.path(), &[]);
    assert_eq!(env.cgroup.version, version);
    assert_eq!(env.cgroup.cpu_quota, quota);
    assert_eq!(env.cgroup.memory_limit, memory);
}

#[rstest]
#[case::affinity_only("Cpus_allowed_list:\t0-3\n", None, 4, 4.0)]
#[case::affinity_with_gaps("Cpus_allowed_list:\t0-1,4,6-7\n", None, 5, 5.0)]
#[case::quota_caps_affinity("Cpus_allowed_list:\t0-7\n", Some("150000 100000"), 8, 1.5)]
#[case::online_file_when_status_lacks_list("Name:\ttest\n", None, 2, 2.0)]
fn usable_cores(
    #[case] status: &str,
    #[case] cpu_max: Option<&str>,
    #[case] host: usize,
    #[case] usable: f64,
) {
    let mut files = vec![
        ("proc/self/status", status),
        ("sys/devices/system/cpu/online", "0-1\n"),
    ];
    if let Some(max) = cpu_max {
        files.push(("proc/self/cgroup", "0::/\n"));
        files.push(("sys/fs/cgroup/cpu.max", max));
    }
    let root = tree(&files);
    let env = detect(root.path(), &[]);
    assert_eq!(env.host_cpus, host);
    assert!(
        (env.usable_cores() - usable).abs() < 1e-9,
        "{}",
        env.usable_cores()
    );
}

#[rstest]
#[case::none("TracerPid:\t0\n", &[], false, vec![])]
#[case::debugger("TracerPid:\t4242\n", &[], false, vec![Instrumentation::Debugger { tracer_pid: 4242 }])]
#[case::valgrind("TracerPid:\t0\n", &[("LD_PRELOAD", "/usr/libexec/valgrind/vgpreload_core-amd64-linux.so")], false, vec![Instrumentation::Valgrind])]
#[case::miri("TracerPid:\t0\n", &[], true, vec![Instrumentation::Miri])]
#[case::asan("", &[("LD_PRELOAD", "/usr/lib/libasan.so.8")], false, vec![Instrumentation::Sanitizer("asan".into())])]
#[case::declared("", &[("GAUNTLET_INSTRUMENTED", "1")], false, vec![Instrumentation::Declared])]
fn instrumentation(
    #[case] status: &str,
    #[case] vars: &[(&str, &str)],
    #[case] miri: bool,
    #[case] expected: Vec<Instrumentation>,
) {
    let root = tree(&[("proc/self/status", status)]);
    let probe = vars
        .iter()
        .fold(Probe::fake(root.path()).miri(miri), |p, (k, v)| {
            p.var_set(k, v)
        });
    assert_eq!(Environment::detect_with(&probe).instrumentation, expected);
}

#[test]
fn nextest_facts_are_read() {
    let root = tree(&[]);
    let env = detect(
        root.path(),
        &[
            ("NEXTEST", "1"),
            ("NEXTEST_PROFILE", "ci"),
            ("NEXTEST_EXECUTION_MODE", "process-per-test"),
            ("NEXTEST_ATTEMPT", "2"),
            ("NEXTEST_TOTAL_ATTEMPTS", "3"),
        ],
    );
    let facts = env.nextest.expect("nextest detected");
    assert_eq!(facts.profile.as_deref(), Some("ci"));
    assert!(facts.process_per_test());
    assert_eq!((facts.attempt, facts.total_attempts), (Some(2), Some(3)));
}

#[test]
fn without_nextest_variables_there_are_no_nextest_facts() {
    let root = tree(&[]);
    assert_eq!(
        detect(root.path(), &[("NEXTEST_PROFILE", "ci")]).nextest,
        None
    );
}

const MOUNTINFO: &str = "\
22 1 8:1 / / rw,relatime - ext4 /dev/sdc rw,discard
41 22 0:37 / /mnt/c rw,noatime - 9p drvfs rw,dirsync,aname=drvfs;path=C:\\;uid=1000
42 22 0:38 / /mnt/wsl1\\040drive rw,noatime - drvfs C:\\134 rw
43 41 0:39 / /mnt/c/linux rw - ext4 /dev/sdd rw
";

#[rstest]
#[case::wsl2_windows_drive("/mnt/c/models/m.gguf", "9p", true)]
#[case::wsl1_drvfs_with_escaped_space("/mnt/wsl1 drive/m.gguf", "drvfs", true)]
#[case::linux_disk("/home/me/m.gguf", "ext4", false)]
#[case::nested_mount_wins("/mnt/c/linux/m.gguf", "ext4", false)]
#[case::relative_path_resolves_from_root("m.gguf", "ext4", false)]
fn mount_of_path(#[case] path: &str, #[case] fs_type: &str, #[case] windows: bool) {
    let root = tree(&[("proc/self/mountinfo", MOUNTINFO)]);
    let mount = Environment::mount_of(&Probe::fake(root.path()), Path::new(path)).expect("a mount");
    assert_eq!(mount.fs_type, fs_type);
    assert_eq!(mount.is_windows_drive(), windows);
}

#[test]
fn real_system_detection_does_not_panic_and_counts_cores() {
    let env = Environment::detect();
    assert!(env.host_cpus >= 1);
    assert!(env.usable_cores() > 0.0);
    assert!(!env.facts().is_empty());
}
