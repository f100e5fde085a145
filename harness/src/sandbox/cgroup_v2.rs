//! cgroup v2: one directory in the unified hierarchy.

use std::{
    fs,
    os::fd::OwnedFd,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use super::{
    Limits, SandboxError,
    cgroup_v1::{CFS_PERIOD_US, cfs_quota_us},
    group::{
        GroupStats, cg_err, keyed_value, kill_listed_until_empty, open_procs, read_u64,
        rmdir_bounded, write_file,
    },
};

#[derive(Debug)]
pub(crate) struct V2Group {
    dir: PathBuf,
    procs: Vec<OwnedFd>,
}

impl V2Group {
    pub(crate) fn create(
        parent: &Path,
        name: &str,
        limits: &Limits,
        unenforced: &mut Vec<String>,
    ) -> Result<Self, SandboxError> {
        let dir = parent.join(name);
        fs::create_dir(&dir).map_err(|e| cg_err(&dir, "create", e))?;
        let mut g = V2Group {
            dir,
            procs: Vec::new(),
        };
        g.apply(limits, unenforced)?;
        g.procs.push(open_procs(&g.dir)?);
        Ok(g)
    }

    /// Writes the limits. A missing interface file means the controller is not enabled for
    /// this group; that limit is reported as unenforced rather than silently dropped.
    fn apply(&self, limits: &Limits, unenforced: &mut Vec<String>) -> Result<(), SandboxError> {
        let mut set = |file: &str, value: Option<String>, what: &str| -> Result<(), SandboxError> {
            let Some(value) = value else { return Ok(()) };
            let path = self.dir.join(file);
            if path.exists() {
                write_file(&path, &value)
            } else {
                unenforced.push(format!("{what}: {} is missing", path.display()));
                Ok(())
            }
        };
        set(
            "memory.max",
            limits.memory_max.map(|m| m.to_string()),
            "memory_max",
        )?;
        set(
            "memory.swap.max",
            limits.swap_max.map(|s| s.to_string()),
            "swap_max",
        )?;
        set(
            "cpu.max",
            limits
                .cpus
                .map(|c| format!("{} {CFS_PERIOD_US}", cfs_quota_us(c))),
            "cpus",
        )?;
        set(
            "pids.max",
            limits.pids_max.map(|n| n.to_string()),
            "pids_max",
        )?;
        Ok(())
    }

    pub(crate) fn procs_fds(&self) -> &[OwnedFd] {
        &self.procs
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn stats(&self) -> GroupStats {
        stats_at(&self.dir)
    }

    /// `cgroup.kill` (Linux 5.14+) kills the whole subtree atomically, forks included; older
    /// kernels fall back to killing the listed pids until none are left.
    pub(crate) fn kill_all(&self, bound: Duration) -> Result<(), String> {
        let populated = || {
            fs::read_to_string(self.dir.join("cgroup.events"))
                .ok()
                .and_then(|e| keyed_value(&e, "populated"))
        };
        if populated() == Some(0) {
            return Ok(());
        }
        let kill = self.dir.join("cgroup.kill");
        if kill.exists() && write_file(&kill, "1").is_ok() {
            let start = Instant::now();
            let mut pause = Duration::from_micros(100);
            loop {
                if populated() == Some(0) {
                    return Ok(());
                }
                if start.elapsed() > bound {
                    break;
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
        }
        kill_listed_until_empty(&self.dir.join("cgroup.procs"), bound)
    }

    pub(crate) fn remove(&self, bound: Duration) -> Result<(), String> {
        rmdir_bounded(&self.dir, bound)
    }
}

/// Counters of any v2 group directory (also a systemd scope's).
pub(crate) fn stats_at(dir: &Path) -> GroupStats {
    let events = fs::read_to_string(dir.join("memory.events")).unwrap_or_default();
    let cpu = fs::read_to_string(dir.join("cpu.stat")).unwrap_or_default();
    GroupStats {
        // memory.peak exists from Linux 5.19; older kernels report no peak.
        peak: read_u64(&dir.join("memory.peak")),
        oom_kills: keyed_value(&events, "oom_kill").unwrap_or(0),
        cpu_time_s: keyed_value(&cpu, "usage_usec").map(|us| us as f64 / 1e6),
        throttled_s: keyed_value(&cpu, "throttled_usec").map(|us| us as f64 / 1e6),
    }
}

impl Drop for V2Group {
    /// Only does work for a group that failed half-way through `create`.
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_group(files: &[&str]) -> (tempfile::TempDir, V2Group) {
        let root = tempfile::tempdir().unwrap();
        for f in files {
            fs::write(root.path().join(f), "max").unwrap();
        }
        let g = V2Group {
            dir: root.path().to_path_buf(),
            procs: Vec::new(),
        };
        (root, g)
    }

    #[test]
    fn v2_limits_are_written_in_kernel_syntax_in_a_fake_tree() {
        let (root, g) = fake_group(&["memory.max", "memory.swap.max", "cpu.max", "pids.max"]);
        let limits = Limits {
            memory_max: Some(64 << 20),
            swap_max: Some(0),
            cpus: Some(1.5),
            pids_max: Some(16),
            timeout: None,
        };
        let mut unenforced = Vec::new();
        g.apply(&limits, &mut unenforced).unwrap();
        let read = |p: &str| fs::read_to_string(root.path().join(p)).unwrap();
        assert_eq!(read("memory.max"), "67108864");
        assert_eq!(read("memory.swap.max"), "0");
        assert_eq!(read("cpu.max"), "150000 100000");
        assert_eq!(read("pids.max"), "16");
        assert!(unenforced.is_empty());
        std::mem::forget(g); // Drop would rmdir the tempdir's root.
    }

    #[test]
    fn v2_missing_controller_file_is_reported_unenforced() {
        let (_root, g) = fake_group(&["memory.max"]);
        let limits = Limits {
            memory_max: Some(1 << 20),
            pids_max: Some(4),
            ..Limits::default()
        };
        let mut unenforced = Vec::new();
        g.apply(&limits, &mut unenforced).unwrap();
        assert_eq!(unenforced.len(), 1);
        assert!(unenforced[0].starts_with("pids_max: "), "{unenforced:?}");
        std::mem::forget(g);
    }

    #[test]
    fn v2_stats_read_peak_oom_kills_and_cpu_usage_from_a_fake_tree() {
        let (root, g) = fake_group(&[]);
        fs::write(root.path().join("memory.peak"), "67104768\n").unwrap();
        fs::write(
            root.path().join("memory.events"),
            "low 0\nhigh 0\nmax 40\noom 1\noom_kill 1\noom_group_kill 0\n",
        )
        .unwrap();
        fs::write(
            root.path().join("cpu.stat"),
            "usage_usec 1500000\nuser_usec 1000000\nnr_throttled 3\nthrottled_usec 250000\n",
        )
        .unwrap();
        let s = g.stats();
        assert_eq!(s.peak, Some(67_104_768));
        assert_eq!(s.oom_kills, 1);
        assert_eq!(s.cpu_time_s, Some(1.5));
        assert_eq!(s.throttled_s, Some(0.25));
        std::mem::forget(g);
    }

    #[test]
    fn v2_stats_without_memory_peak_report_no_peak() {
        let (_root, g) = fake_group(&[]);
        assert_eq!(g.stats(), GroupStats::default());
        std::mem::forget(g);
    }

    /// A writable cgroup2 mount, even one without controllers (hybrid hosts mount one at
    /// `/sys/fs/cgroup/unified`): enough to exercise joining, `cgroup.kill`, `cpu.stat` and
    /// removal for real. Skips otherwise; `GAUNTLET_REQUIRE_CGROUP_V2=1` makes that a failure.
    fn real_v2_parent() -> Option<PathBuf> {
        let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let found = super::super::detect::parse_mountinfo(&text)
            .into_iter()
            .find(|m| m.v1_controllers.is_none() && super::super::detect::writable(&m.mount_point))
            .map(|m| m.mount_point);
        if found.is_none() {
            assert!(
                std::env::var("GAUNTLET_REQUIRE_CGROUP_V2").as_deref() != Ok("1"),
                "GAUNTLET_REQUIRE_CGROUP_V2=1 but no writable cgroup2 mount exists"
            );
            println!("SKIP no writable cgroup2 mount");
        }
        found
    }

    #[test]
    fn real_v2_group_timeout_kills_grandchildren_and_is_removed() {
        use super::super::{Output, Sandbox, Termination, detect::Plan};
        let Some(parent) = real_v2_parent() else {
            return;
        };
        let sb = Sandbox {
            limits: Limits {
                timeout: Some(Duration::from_millis(300)),
                ..Limits::default()
            },
            output: Output::Capture { limit: 4096 },
            plan: Plan::CgroupV2 { parent },
            cancel: None,
        };
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", "sleep 100 & echo $!; sleep 100 & echo $!; wait"]);
        let o = sb.run(cmd).unwrap();
        assert_eq!(o.termination, Termination::TimedOut, "{}", o.summary());
        assert_eq!(o.mechanism.as_str(), "cgroup-v2");
        let pids: Vec<i32> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect();
        assert_eq!(pids.len(), 2);
        for pid in pids {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat.rsplit_once(") ").map_or("", |(_, r)| r);
            assert!(
                stat.is_empty() || state.starts_with('Z'),
                "sleep {pid} survived: {state:.1}"
            );
        }
        let dir = o.cgroup.expect("group path");
        assert!(!Path::new(&dir).exists(), "{dir} left behind");
    }
}
