//! Memory pre-flight against fake `/proc` + `/sys/fs/cgroup` trees: v1, v2, hybrid,
//! nested, namespaced, unlimited and unreadable machines. Messages are snapshotted.

use std::fs;
use std::path::Path;

use gauntlet_engine::load::LoadMode;
use gauntlet_engine::preflight::{
    LimitKind, Outcome, Preflight, ResidentEstimate, SystemRoot, check,
};
use tempfile::TempDir;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const V1_UNLIMITED: &str = "9223372036854771712";

/// A fake machine: files written under a temporary directory standing in for `/`.
struct Machine {
    dir: TempDir,
}

impl Machine {
    fn new() -> Self {
        Machine {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn file(&self, logical: &str, content: &str) -> &Self {
        let path = self.dir.path().join(logical.trim_start_matches('/'));
        fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
        fs::write(path, content).expect("write");
        self
    }

    fn meminfo(&self, available: u64) -> &Self {
        self.file(
            "/proc/meminfo",
            &format!(
                "MemTotal:       32000000 kB\nMemFree:        1000 kB\nMemAvailable:   {} kB\n",
                available / 1024
            ),
        )
    }

    /// This machine's layout: cgroup v1 controllers plus an empty v2 `unified` mount.
    fn v1_hybrid(&self, path: &str) -> &Self {
        self.file(
            "/proc/self/cgroup",
            &format!("5:devices:/\n4:memory:{path}\n1:cpu:/\n0::/\n"),
        )
        .file(
            "/proc/self/mountinfo",
            "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
                 35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                 32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
                 41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n",
        )
    }

    fn v2(&self, path: &str) -> &Self {
        self.file("/proc/self/cgroup", &format!("0::{path}\n")).file(
            "/proc/self/mountinfo",
            "25 1 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n",
        )
    }

    fn v1_level(&self, dir: &str, limit: &str, usage: u64, inactive_file: u64) -> &Self {
        self.file(&format!("{dir}/memory.limit_in_bytes"), limit)
            .file(&format!("{dir}/memory.usage_in_bytes"), &usage.to_string())
            .file(
                &format!("{dir}/memory.stat"),
                &format!("cache 0\nrss 0\ntotal_inactive_file {inactive_file}\n"),
            )
    }

    fn v2_level(&self, dir: &str, max: &str, high: &str, current: u64) -> &Self {
        self.file(&format!("{dir}/memory.max"), max)
            .file(&format!("{dir}/memory.high"), high)
            .file(&format!("{dir}/memory.current"), &current.to_string())
            .file(&format!("{dir}/memory.stat"), "anon 0\ninactive_file 0\n")
    }

    fn check(&self, mode: LoadMode, tensor_bytes: u64) -> Preflight {
        let estimate = ResidentEstimate::new(
            mode,
            [tensor_bytes / 2, tensor_bytes - tensor_bytes / 2],
            4 * MIB,
        );
        check(&estimate, &SystemRoot::at(self.dir.path()))
    }
}

fn binding_path(p: &Preflight) -> &Path {
    &p.binding().expect("a limit").path
}

/// A v1 leaf limited to 512 MiB with 20 MiB in use, plenty of MemAvailable: a 1200 MiB
/// model is tight in it whichever way it loads, so the load modes differ only in the message.
fn v1_leaf_of_512_mib() -> Machine {
    let m = Machine::new();
    m.v1_hybrid("/gauntlet-test")
        .v1_level(
            "/sys/fs/cgroup/memory/gauntlet-test",
            &(512 * MIB).to_string(),
            20 * MIB,
            0,
        )
        .meminfo(16 * GIB);
    m
}

#[test]
fn v1_ancestor_limit_binds_when_leaf_is_unlimited() {
    let m = Machine::new();
    m.v1_hybrid("/process_api/job")
        .v1_level("/sys/fs/cgroup/memory", V1_UNLIMITED, 5 * GIB, 0)
        .v1_level(
            "/sys/fs/cgroup/memory/process_api",
            &(2 * GIB).to_string(),
            500 * MIB,
            0,
        )
        .v1_level(
            "/sys/fs/cgroup/memory/process_api/job",
            V1_UNLIMITED,
            100 * MIB,
            0,
        )
        .meminfo(16 * GIB);
    let p = m.check(LoadMode::Read, 1200 * MIB);
    assert_eq!(p.outcome, Outcome::Ok);
    assert_eq!(
        binding_path(&p),
        Path::new("/sys/fs/cgroup/memory/process_api/memory.limit_in_bytes")
    );
    insta::assert_snapshot!(p.message());
}

#[test]
fn v1_leaf_below_model_is_tight_in_read_mode() {
    let m = v1_leaf_of_512_mib();
    let p = m.check(LoadMode::Read, 1200 * MIB);
    assert_eq!(p.outcome, Outcome::Tight);
    insta::assert_snapshot!(p.message());
}

#[test]
fn v1_tight_in_mmap_mode_says_pages_are_reclaimable() {
    let m = v1_leaf_of_512_mib();
    let p = m.check(LoadMode::Mmap, 1200 * MIB);
    assert_eq!(p.outcome, Outcome::Tight);
    insta::assert_snapshot!(p.message());
}

#[test]
fn inactive_file_pages_do_not_count_as_usage() {
    let m = Machine::new();
    m.v1_hybrid("/cache-heavy")
        .v1_level(
            "/sys/fs/cgroup/memory/cache-heavy",
            &(2 * GIB).to_string(),
            1900 * MIB,
            1800 * MIB,
        )
        .meminfo(16 * GIB);
    let p = m.check(LoadMode::Read, 1200 * MIB);
    assert_eq!(p.binding().expect("limit").usage, 100 * MIB);
    assert_eq!(p.outcome, Outcome::Ok);
}

#[test]
fn v2_memory_high_on_parent_binds_below_leaf_max() {
    let m = Machine::new();
    m.v2("/user.slice/app.service")
        .file("/sys/fs/cgroup/memory.stat", "anon 0\n")
        .v2_level(
            "/sys/fs/cgroup/user.slice",
            "max",
            &(800 * MIB).to_string(),
            100 * MIB,
        )
        .v2_level(
            "/sys/fs/cgroup/user.slice/app.service",
            &GIB.to_string(),
            "max",
            50 * MIB,
        )
        .meminfo(16 * GIB);
    let p = m.check(LoadMode::Read, 1200 * MIB);
    assert_eq!(p.outcome, Outcome::Tight);
    assert_eq!(p.binding().expect("limit").kind, LimitKind::CgroupV2High);
    insta::assert_snapshot!(p.message());
}

#[test]
fn v2_nested_grandparent_limit_is_found() {
    let m = Machine::new();
    m.v2("/a/b/c/d")
        .v2_level("/sys/fs/cgroup/a", &(3 * GIB).to_string(), "max", GIB)
        .v2_level(
            "/sys/fs/cgroup/a/b",
            &(900 * MIB).to_string(),
            "max",
            10 * MIB,
        )
        .v2_level("/sys/fs/cgroup/a/b/c", "max", "max", 5 * MIB)
        .v2_level(
            "/sys/fs/cgroup/a/b/c/d",
            &(4 * GIB).to_string(),
            "max",
            5 * MIB,
        )
        .meminfo(16 * GIB);
    let p = m.check(LoadMode::Read, 600 * MIB);
    assert_eq!(p.outcome, Outcome::Ok);
    assert_eq!(binding_path(&p), Path::new("/sys/fs/cgroup/a/b/memory.max"));
    assert_eq!(
        p.limits.len(),
        4,
        "three cgroup limits and MemAvailable: {:?}",
        p.limits
    );
    insta::assert_snapshot!(p.message());
}

#[test]
fn hybrid_ignores_v2_files_when_v1_has_the_memory_controller() {
    let m = Machine::new();
    m.v1_hybrid("/job")
        .v1_level("/sys/fs/cgroup/memory/job", &(4 * GIB).to_string(), 0, 0)
        .v2_level("/sys/fs/cgroup/unified", &MIB.to_string(), "max", 0)
        .meminfo(16 * GIB);
    let p = m.check(LoadMode::Read, GIB);
    assert_eq!(p.outcome, Outcome::Ok);
    assert_eq!(
        binding_path(&p),
        Path::new("/sys/fs/cgroup/memory/job/memory.limit_in_bytes")
    );
}

#[test]
fn namespaced_container_reads_its_own_cgroup_at_the_mount_point() {
    let m = Machine::new();
    m.file("/proc/self/cgroup", "0::/\n")
        .file(
            "/proc/self/mountinfo",
            "700 690 0:30 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw\n",
        )
        .v2_level("/sys/fs/cgroup", &(256 * MIB).to_string(), "max", 16 * MIB)
        .meminfo(64 * GIB);
    let p = m.check(LoadMode::Read, 1200 * MIB);
    assert_eq!(p.outcome, Outcome::Tight);
    assert_eq!(binding_path(&p), Path::new("/sys/fs/cgroup/memory.max"));
}

#[test]
fn v1_mount_rooted_at_the_container_cgroup() {
    let m = Machine::new();
    m.file("/proc/self/cgroup", "4:memory:/docker/abc\n")
        .file(
            "/proc/self/mountinfo",
            "35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n",
        )
        .v1_level("/sys/fs/cgroup/memory", &(300 * MIB).to_string(), 0, 0)
        .meminfo(64 * GIB);
    let p = m.check(LoadMode::Read, 1200 * MIB);
    assert_eq!(
        binding_path(&p),
        Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes")
    );
}

#[test]
fn unlimited_cgroups_fall_back_to_mem_available() {
    let m = Machine::new();
    m.v2("/free")
        .v2_level("/sys/fs/cgroup/free", "max", "max", 0)
        .meminfo(GIB);
    let p = m.check(LoadMode::Read, 1200 * MIB);
    assert_eq!(p.outcome, Outcome::Tight);
    assert_eq!(p.binding().expect("limit").kind, LimitKind::MemAvailable);
    insta::assert_snapshot!(p.message());
}

#[test]
fn unreadable_machine_is_unknown_with_the_reasons() {
    let m = Machine::new();
    let p = m.check(LoadMode::Read, GIB);
    assert_eq!(p.outcome, Outcome::Unknown);
    insta::assert_snapshot!(p.message());
}

#[test]
fn garbage_limit_file_is_noted_and_skipped() {
    let m = Machine::new();
    m.v1_hybrid("/odd")
        .v1_level("/sys/fs/cgroup/memory/odd", "lots", 0, 0)
        .meminfo(8 * GIB);
    let p = m.check(LoadMode::Read, GIB);
    assert_eq!(p.outcome, Outcome::Ok);
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("/sys/fs/cgroup/memory/odd/memory.limit_in_bytes")),
        "{:?}",
        p.notes
    );
}

#[test]
fn quantized_model_is_counted_at_its_real_size() {
    // A 2B-parameter ternary model: 2.0625 bits per weight in TQ2_0, not 16.
    let weights: u64 = 2_000_000_000;
    let tq2_bytes = weights / 256 * 66;
    let m = Machine::new();
    m.v1_hybrid("/job")
        .v1_level("/sys/fs/cgroup/memory/job", &(700 * MIB).to_string(), 0, 0)
        .meminfo(64 * GIB);
    let p = m.check(LoadMode::Read, tq2_bytes);
    assert_eq!(p.outcome, Outcome::Ok, "{}", p.message());
}
