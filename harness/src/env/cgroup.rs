//! cgroup v1 and v2 CPU quota and memory limit of the current process.
//!
//! Containers usually mount their own cgroup at `/sys/fs/cgroup`, so the path named in
//! `/proc/self/cgroup` may not exist below the mount; each lookup therefore tries the named
//! path, then its ancestors up to the mount root, and keeps the tightest limit found.

use std::path::{Path, PathBuf};

use super::Probe;

/// Which cgroup hierarchy the process lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// Legacy per-controller hierarchies (`/sys/fs/cgroup/cpu,cpuacct/…`).
    V1,
    /// The unified hierarchy (`/sys/fs/cgroup/…/cpu.max`).
    V2,
}

/// CPU and memory limits imposed by the process's cgroup.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupLimits {
    /// The hierarchy found; `None` when `/proc/self/cgroup` is missing.
    pub version: Option<CgroupVersion>,
    /// CPU quota in cores (quota / period); `None` when unlimited.
    pub cpu_quota: Option<f64>,
    /// Memory limit in bytes; `None` when unlimited.
    pub memory_limit: Option<u64>,
}

/// v1 reports "no limit" as a huge page-aligned number rather than a word.
const V1_UNLIMITED_FLOOR: u64 = 1 << 60;

pub(super) fn detect(probe: &Probe) -> CgroupLimits {
    let Some(table) = probe.read("/proc/self/cgroup") else {
        return CgroupLimits::default();
    };
    let mut v2_path = None;
    let mut v1 = Vec::new();
    for line in table.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            v2_path = Some(path.to_owned());
        } else {
            v1.push((controllers.to_owned(), path.to_owned()));
        }
    }
    if !v1.is_empty() && v1.iter().any(|(c, _)| !c.is_empty()) {
        return detect_v1(probe, &v1);
    }
    match v2_path {
        Some(path) => detect_v2(probe, &path),
        None => CgroupLimits::default(),
    }
}

fn detect_v2(probe: &Probe, path: &str) -> CgroupLimits {
    let base = PathBuf::from("/sys/fs/cgroup");
    let mut limits = CgroupLimits {
        version: Some(CgroupVersion::V2),
        ..Default::default()
    };
    for dir in candidates(&base, path) {
        if let Some(quota) = probe
            .read(dir.join("cpu.max"))
            .and_then(|t| parse_cpu_max(&t))
        {
            limits.cpu_quota = Some(limits.cpu_quota.map_or(quota, |q| q.min(quota)));
        }
        if let Some(mem) = probe
            .read(dir.join("memory.max"))
            .and_then(|t| parse_limit(&t))
        {
            limits.memory_limit = Some(limits.memory_limit.map_or(mem, |m| m.min(mem)));
        }
    }
    limits
}

fn detect_v1(probe: &Probe, hierarchies: &[(String, String)]) -> CgroupLimits {
    let mut limits = CgroupLimits {
        version: Some(CgroupVersion::V1),
        ..Default::default()
    };
    for (controllers, path) in hierarchies {
        let names: Vec<&str> = controllers.split(',').collect();
        // The mount directory is named after the joined controller list; distributions also
        // add a symlink per controller, so try both.
        let joined = PathBuf::from("/sys/fs/cgroup").join(controllers);
        if names.contains(&"cpu") {
            let mounts = [joined.clone(), PathBuf::from("/sys/fs/cgroup/cpu")];
            for dir in mounts.iter().flat_map(|m| candidates(m, path)) {
                let quota = probe.read(dir.join("cpu.cfs_quota_us"));
                let period = probe.read(dir.join("cpu.cfs_period_us"));
                if let (Some(q), Some(p)) = (quota, period)
                    && let Some(cores) = parse_cfs(&q, &p)
                {
                    limits.cpu_quota = Some(limits.cpu_quota.map_or(cores, |c| c.min(cores)));
                }
            }
        }
        if names.contains(&"memory") {
            let mounts = [joined.clone(), PathBuf::from("/sys/fs/cgroup/memory")];
            for dir in mounts.iter().flat_map(|m| candidates(m, path)) {
                if let Some(mem) = probe
                    .read(dir.join("memory.limit_in_bytes"))
                    .and_then(|t| parse_limit(&t))
                    .filter(|&m| m < V1_UNLIMITED_FLOOR)
                {
                    limits.memory_limit = Some(limits.memory_limit.map_or(mem, |m| m.min(mem)));
                }
            }
        }
    }
    limits
}

/// The cgroup's own directory, then each ancestor up to the mount root.
fn candidates(mount: &Path, cgroup_path: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut rel = PathBuf::from(cgroup_path.trim_start_matches('/'));
    loop {
        out.push(mount.join(&rel));
        if !rel.pop() {
            break;
        }
    }
    out.dedup();
    out
}

/// `cpu.max` holds `"<quota|max> <period>"`.
fn parse_cpu_max(text: &str) -> Option<f64> {
    let mut it = text.split_whitespace();
    let quota = it.next()?;
    let period: f64 = it.next().and_then(|p| p.parse().ok()).unwrap_or(100_000.0);
    if quota == "max" || period <= 0.0 {
        return None;
    }
    let quota: f64 = quota.parse().ok()?;
    (quota > 0.0).then_some(quota / period)
}

fn parse_cfs(quota: &str, period: &str) -> Option<f64> {
    let quota: i64 = quota.trim().parse().ok()?;
    let period: i64 = period.trim().parse().ok()?;
    (quota > 0 && period > 0).then(|| quota as f64 / period as f64)
}

fn parse_limit(text: &str) -> Option<u64> {
    let text = text.trim();
    if text == "max" {
        return None;
    }
    text.parse().ok()
}
