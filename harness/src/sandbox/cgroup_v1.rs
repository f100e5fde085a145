//! cgroup v1: one directory per hierarchy (memory, cpu, cpuacct, pids, freezer).

use std::{
    fs,
    os::fd::OwnedFd,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use super::{
    Limits, SandboxError,
    detect::V1Parents,
    group::{
        GroupStats, cg_err, keyed_value, kill_listed_until_empty, open_procs, read_u64,
        rmdir_bounded, write_file,
    },
};

/// CFS period used for CPU quotas: the kernel default, 100 ms.
pub(crate) const CFS_PERIOD_US: u64 = 100_000;

#[derive(Debug)]
pub(crate) struct V1Group {
    memory: PathBuf,
    cpu: Option<PathBuf>,
    cpuacct: Option<PathBuf>,
    pids: Option<PathBuf>,
    freezer: Option<PathBuf>,
    /// Every distinct directory made, in creation order (removed in reverse).
    dirs: Vec<PathBuf>,
    procs: Vec<OwnedFd>,
}

/// `cpus` cores as a CFS quota per [`CFS_PERIOD_US`], never below the kernel's 1 ms minimum.
pub(crate) fn cfs_quota_us(cpus: f64) -> u64 {
    ((cpus * CFS_PERIOD_US as f64).round() as u64).max(1_000)
}

impl V1Group {
    pub(crate) fn create(
        parents: &V1Parents,
        name: &str,
        limits: &Limits,
        unenforced: &mut Vec<String>,
    ) -> Result<Self, SandboxError> {
        let mut g = V1Group {
            memory: parents.memory.join(name),
            cpu: None,
            cpuacct: None,
            pids: None,
            freezer: None,
            dirs: Vec::new(),
            procs: Vec::new(),
        };
        // Built step by step so that on any error the partly made group is removed by `Drop`.
        g.make(&parents.memory.join(name))?;
        if let Some(p) = &parents.cpuacct {
            g.cpuacct = Some(g.make(&p.join(name))?);
        }
        match (&parents.cpu, limits.cpus) {
            (Some(p), Some(_)) => g.cpu = Some(g.make(&p.join(name))?),
            (None, Some(_)) => {
                unenforced.push("cpus: no cgroup v1 cpu hierarchy is mounted".into())
            }
            _ => {}
        }
        match (&parents.pids, limits.pids_max) {
            (Some(p), Some(_)) => g.pids = Some(g.make(&p.join(name))?),
            (None, Some(_)) => {
                unenforced.push("pids_max: no cgroup v1 pids hierarchy is mounted".into())
            }
            _ => {}
        }
        if let Some(p) = &parents.freezer {
            g.freezer = Some(g.make(&p.join(name))?);
        }
        g.apply(limits, unenforced)?;
        for i in 0..g.dirs.len() {
            let fd = open_procs(&g.dirs[i])?;
            g.procs.push(fd);
        }
        Ok(g)
    }

    /// Writes the limits into the group's directories.
    fn apply(&self, limits: &Limits, unenforced: &mut Vec<String>) -> Result<(), SandboxError> {
        if let Some(m) = limits.memory_max {
            write_file(&self.memory.join("memory.limit_in_bytes"), &m.to_string())?;
            // memsw counts memory + swap; it must be written after the memory limit.
            let memsw = self.memory.join("memory.memsw.limit_in_bytes");
            match limits.swap_max {
                Some(s) if memsw.exists() => write_file(&memsw, &m.saturating_add(s).to_string())?,
                Some(_) => unenforced.push(
                    "swap_max: memory.memsw.limit_in_bytes is missing (swap accounting is off; \
                     boot with swapaccount=1)"
                        .into(),
                ),
                None => {}
            }
        } else if limits.swap_max.is_some() {
            unenforced.push("swap_max: cgroup v1 limits swap only together with memory_max".into());
        }
        if let (Some(dir), Some(cpus)) = (&self.cpu, limits.cpus) {
            write_file(&dir.join("cpu.cfs_period_us"), &CFS_PERIOD_US.to_string())?;
            write_file(
                &dir.join("cpu.cfs_quota_us"),
                &cfs_quota_us(cpus).to_string(),
            )?;
        }
        if let (Some(dir), Some(n)) = (&self.pids, limits.pids_max) {
            write_file(&dir.join("pids.max"), &n.to_string())?;
        }
        Ok(())
    }

    /// Makes `dir` unless a combined mount (`cpu,cpuacct`) already made it.
    fn make(&mut self, dir: &Path) -> Result<PathBuf, SandboxError> {
        if !self.dirs.iter().any(|d| d == dir) {
            fs::create_dir(dir).map_err(|e| cg_err(dir, "create", e))?;
            self.dirs.push(dir.to_path_buf());
        }
        Ok(dir.to_path_buf())
    }

    pub(crate) fn procs_fds(&self) -> &[OwnedFd] {
        &self.procs
    }

    pub(crate) fn memory_dir(&self) -> &Path {
        &self.memory
    }

    pub(crate) fn stats(&self) -> GroupStats {
        let oom = fs::read_to_string(self.memory.join("memory.oom_control")).unwrap_or_default();
        GroupStats {
            peak: read_u64(&self.memory.join("memory.max_usage_in_bytes")),
            oom_kills: keyed_value(&oom, "oom_kill").unwrap_or(0),
            cpu_time_s: self
                .cpuacct
                .as_ref()
                .and_then(|d| read_u64(&d.join("cpuacct.usage")))
                .map(|ns| ns as f64 / 1e9),
            throttled_s: self.cpu.as_ref().and_then(|d| {
                let stat = fs::read_to_string(d.join("cpu.stat")).ok()?;
                keyed_value(&stat, "throttled_time").map(|ns| ns as f64 / 1e9)
            }),
        }
    }

    /// Freezes the group (so nothing forks while we kill), kills every task, thaws so the
    /// SIGKILLs are delivered, then waits for the memory group's task list to empty.
    pub(crate) fn kill_all(&self, bound: Duration) -> Result<(), String> {
        let procs = self.memory.join("cgroup.procs");
        if fs::read_to_string(&procs).is_ok_and(|s| s.trim().is_empty()) {
            return Ok(());
        }
        if let Some(f) = &self.freezer {
            let state = f.join("freezer.state");
            if write_file(&state, "FROZEN").is_ok() {
                let start = Instant::now();
                while start.elapsed() < Duration::from_millis(500)
                    && fs::read_to_string(&state).is_ok_and(|s| s.trim() == "FREEZING")
                {
                    std::thread::yield_now();
                }
                let _ = kill_listed_until_empty_once(&procs);
                let _ = write_file(&state, "THAWED");
            }
        }
        kill_listed_until_empty(&procs, bound)
    }

    pub(crate) fn remove(&self, bound: Duration) -> Result<(), String> {
        let mut errors = Vec::new();
        for dir in self.dirs.iter().rev() {
            if let Err(e) = rmdir_bounded(dir, bound) {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

impl Drop for V1Group {
    /// Only reached for a group that failed half-way through `create`; a complete group is
    /// removed by its [`super::group::GroupGuard`] first (after which rmdir finds nothing).
    fn drop(&mut self) {
        for dir in self.dirs.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}

fn kill_listed_until_empty_once(procs: &Path) -> Result<(), String> {
    let text = fs::read_to_string(procs).map_err(|e| e.to_string())?;
    for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        // SAFETY: plain kill(2) on a pid listed in our group.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cfs_quota_scales_with_cores_and_respects_kernel_minimum() {
        let cases = [
            (0.5, 50_000),
            (1.0, 100_000),
            (2.25, 225_000),
            (0.001, 1_000),
        ];
        for (cpus, want) in cases {
            assert_eq!(cfs_quota_us(cpus), want, "{cpus} cores");
        }
    }

    #[test]
    fn v1_limits_are_written_to_the_right_files_in_a_fake_tree() {
        let root = tempfile::tempdir().unwrap();
        let mk = |n: &str| {
            let p = root.path().join(n);
            fs::create_dir(&p).unwrap();
            p
        };
        let memory = mk("memory");
        // Swap accounting on: the memsw file exists, as the kernel would provide it.
        fs::write(memory.join("memory.memsw.limit_in_bytes"), "").unwrap();
        let g = V1Group {
            memory,
            cpu: Some(mk("cpu")),
            cpuacct: None,
            pids: Some(mk("pids")),
            freezer: None,
            dirs: Vec::new(),
            procs: Vec::new(),
        };
        let limits = Limits {
            memory_max: Some(64 << 20),
            swap_max: Some(0),
            cpus: Some(0.5),
            pids_max: Some(16),
            timeout: None,
        };
        let mut unenforced = Vec::new();
        g.apply(&limits, &mut unenforced).unwrap();
        let read = |p: &str| fs::read_to_string(root.path().join(p)).unwrap();
        assert_eq!(read("memory/memory.limit_in_bytes"), "67108864");
        assert_eq!(read("memory/memory.memsw.limit_in_bytes"), "67108864");
        assert_eq!(read("cpu/cpu.cfs_period_us"), "100000");
        assert_eq!(read("cpu/cpu.cfs_quota_us"), "50000");
        assert_eq!(read("pids/pids.max"), "16");
        assert!(unenforced.is_empty(), "{unenforced:?}");
    }

    #[test]
    fn v1_swap_limit_without_swap_accounting_is_reported_unenforced() {
        let root = tempfile::tempdir().unwrap();
        let g = V1Group {
            memory: root.path().to_path_buf(),
            cpu: None,
            cpuacct: None,
            pids: None,
            freezer: None,
            dirs: Vec::new(),
            procs: Vec::new(),
        };
        let limits = Limits {
            memory_max: Some(1 << 20),
            swap_max: Some(0),
            ..Limits::default()
        };
        let mut unenforced = Vec::new();
        g.apply(&limits, &mut unenforced).unwrap();
        assert_eq!(unenforced.len(), 1);
        assert!(unenforced[0].starts_with("swap_max"), "{unenforced:?}");
    }
}
