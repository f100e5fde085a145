//! Finding the process's memory cgroup and every limit on the way to the hierarchy root.
//!
//! Everything is read through a [`SystemRoot`], so tests build v1, v2, hybrid, nested and
//! unlimited trees in temporary directories and production passes `/`.

use std::path::{Path, PathBuf};

use super::{LimitKind, LimitSource, SystemRoot};

/// Values at or above this are "no limit": v1 reports `PAGE_COUNTER_MAX` pages rounded
/// down to the page size (0x7FFFFFFFFFFFF000 with 4 KiB pages, other values with 16 or
/// 64 KiB pages), and no machine has 4 EiB of memory.
const UNLIMITED_FLOOR: u64 = 1 << 62;

/// One line of `/proc/self/cgroup`: `id:controllers:path`.
#[derive(Debug)]
struct CgroupLine<'a> {
    hierarchy: &'a str,
    controllers: Vec<&'a str>,
    path: &'a str,
}

fn parse_proc_cgroup(text: &str) -> Vec<CgroupLine<'_>> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let hierarchy = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            Some(CgroupLine {
                hierarchy,
                controllers: controllers.split(',').filter(|c| !c.is_empty()).collect(),
                path,
            })
        })
        .collect()
}

/// The fields of one `/proc/self/mountinfo` line this module needs.
#[derive(Debug)]
struct Mount {
    root: String,
    mount_point: String,
    fstype: String,
    super_options: String,
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        if let Some(d) = octal {
            let v = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
            if let Ok(v) = u8::try_from(v) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            // Fields before " - " are fixed plus optional tags; after it come fstype,
            // source and super options.
            let (pre, post) = line.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            Some(Mount {
                root: unescape_octal(pre.get(3)?),
                mount_point: unescape_octal(pre.get(4)?),
                fstype: (*post.first()?).to_string(),
                super_options: post.get(2).copied().unwrap_or("").to_string(),
            })
        })
        .collect()
}

/// Which cgroup version holds the memory controller for this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// The memory cgroup directory (logical path, as the system sees it) and the mount point
/// that bounds the walk to its ancestors.
#[derive(Debug)]
struct Located {
    version: Version,
    dir: PathBuf,
    top: PathBuf,
}

fn locate(root: &SystemRoot, notes: &mut Vec<String>) -> Option<Located> {
    let cgroup_text = match root.read("/proc/self/cgroup") {
        Ok(t) => t,
        Err(e) => {
            notes.push(format!("/proc/self/cgroup: {e}"));
            return None;
        }
    };
    let mountinfo_text = match root.read("/proc/self/mountinfo") {
        Ok(t) => t,
        Err(e) => {
            notes.push(format!("/proc/self/mountinfo: {e}"));
            return None;
        }
    };
    let lines = parse_proc_cgroup(&cgroup_text);
    let mounts = parse_mountinfo(&mountinfo_text);

    // Hybrid systems mount both; the memory controller then lives in v1, and the v2
    // hierarchy carries no memory files, so v1 wins when it has the controller.
    let v1 = lines
        .iter()
        .find(|l| l.controllers.contains(&"memory"))
        .and_then(|line| {
            let mount = mounts.iter().find(|m| {
                m.fstype == "cgroup" && m.super_options.split(',').any(|o| o == "memory")
            })?;
            Some((Version::V1, line, mount))
        });
    let v2 = || {
        let line = lines
            .iter()
            .find(|l| l.hierarchy == "0" && l.controllers.is_empty())?;
        let mount = mounts.iter().find(|m| m.fstype == "cgroup2")?;
        Some((Version::V2, line, mount))
    };
    let Some((version, line, mount)) = v1.or_else(v2) else {
        notes.push("no memory cgroup in /proc/self/cgroup and /proc/self/mountinfo".into());
        return None;
    };
    let top = PathBuf::from(&mount.mount_point);
    // Inside a cgroup namespace or a container the mount's root is the process's own
    // cgroup (or an ancestor of it); the path below the mount is what is left.
    let rel = Path::new(line.path)
        .strip_prefix(&mount.root)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let rel = rel.strip_prefix("/").map(Path::to_path_buf).unwrap_or(rel);
    Some(Located {
        version,
        dir: top.join(rel),
        top,
    })
}

/// Parses a limit file's content; `None` means "no limit".
fn parse_limit(text: &str) -> Result<Option<u64>, String> {
    let t = text.trim();
    if t == "max" {
        return Ok(None);
    }
    match t.parse::<u64>() {
        Ok(v) if v >= UNLIMITED_FLOOR => Ok(None),
        Ok(v) => Ok(Some(v)),
        Err(_) => Err(format!("{t:?} is neither a byte count nor \"max\"")),
    }
}

/// Bytes the kernel can drop without killing anything: inactive file pages. Usage minus
/// these is the "working set" container runtimes use, so a cgroup full of stale page
/// cache is not mistaken for a full one.
fn reclaimable(root: &SystemRoot, stat: &Path, key: &str) -> u64 {
    let Ok(text) = root.read(stat) else { return 0 };
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok()).flatten()
        })
        .unwrap_or(0)
}

/// Reads every memory limit from the process's cgroup up to the hierarchy root.
pub(super) fn limits(root: &SystemRoot, notes: &mut Vec<String>) -> Vec<LimitSource> {
    let Some(loc) = locate(root, notes) else {
        return Vec::new();
    };
    let (limit_files, usage_file, stat_key): (&[(&str, LimitKind)], &str, &str) = match loc.version
    {
        Version::V1 => (
            &[("memory.limit_in_bytes", LimitKind::CgroupV1Limit)],
            "memory.usage_in_bytes",
            "total_inactive_file",
        ),
        Version::V2 => (
            &[
                ("memory.max", LimitKind::CgroupV2Max),
                ("memory.high", LimitKind::CgroupV2High),
            ],
            "memory.current",
            "inactive_file",
        ),
    };
    let mut out = Vec::new();
    let mut dir = loc.dir.clone();
    if !root.exists(&dir) {
        notes.push(format!(
            "memory cgroup directory {} does not exist",
            dir.display()
        ));
        return out;
    }
    loop {
        for (file, kind) in limit_files {
            let path = dir.join(file);
            // The root of a v2 hierarchy has no memory.max; a missing file is no limit.
            let Ok(text) = root.read(&path) else { continue };
            match parse_limit(&text) {
                Ok(None) => {}
                Ok(Some(limit)) => {
                    let usage_path = dir.join(usage_file);
                    let usage = match root.read(&usage_path).map(|t| t.trim().parse::<u64>()) {
                        Ok(Ok(u)) => u,
                        _ => {
                            notes.push(format!(
                                "{}: unreadable, usage counted as 0",
                                usage_path.display()
                            ));
                            0
                        }
                    };
                    let usage =
                        usage.saturating_sub(reclaimable(root, &dir.join("memory.stat"), stat_key));
                    out.push(LimitSource {
                        kind: *kind,
                        path,
                        limit,
                        usage,
                    });
                }
                Err(why) => notes.push(format!("{}: {why}", path.display())),
            }
        }
        if dir == loc.top || !dir.starts_with(&loc.top) {
            break;
        }
        match dir.parent() {
            Some(p) => dir = p.to_path_buf(),
            None => break,
        }
    }
    out
}

/// Reads `MemAvailable` from `/proc/meminfo`.
pub(super) fn mem_available(root: &SystemRoot, notes: &mut Vec<String>) -> Option<LimitSource> {
    let path = Path::new("/proc/meminfo");
    let text = match root.read(path) {
        Ok(t) => t,
        Err(e) => {
            notes.push(format!("/proc/meminfo: {e}"));
            return None;
        }
    };
    let kib = text.lines().find_map(|l| {
        let rest = l.strip_prefix("MemAvailable:")?;
        rest.trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<u64>()
            .ok()
    });
    match kib {
        Some(k) => Some(LimitSource {
            kind: LimitKind::MemAvailable,
            path: path.to_path_buf(),
            limit: k.saturating_mul(1024),
            usage: 0,
        }),
        None => {
            notes.push("/proc/meminfo: no readable MemAvailable line".into());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_octal_escapes_are_decoded() {
        assert_eq!(unescape_octal(r"/a\040b"), "/a b");
        assert_eq!(unescape_octal(r"/plain"), "/plain");
        assert_eq!(unescape_octal(r"/trailing\04"), r"/trailing\04");
    }

    #[test]
    fn unlimited_values_mean_no_limit() {
        assert_eq!(parse_limit("max\n"), Ok(None));
        assert_eq!(parse_limit("9223372036854771712"), Ok(None));
        assert_eq!(parse_limit("9223372036854710272"), Ok(None));
        assert_eq!(parse_limit("1048576"), Ok(Some(1 << 20)));
        assert!(parse_limit("lots").is_err());
    }
}
