//! Finds the cgroup hierarchies of this process and picks the first mechanism that works.
//!
//! Parsing takes strings so it can be tested against any machine's `/proc/self/mountinfo` and
//! `/proc/self/cgroup`; only [`choose`] touches the real system.

use std::{
    ffi::CString,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
    sync::OnceLock,
};

use super::{Limits, MECHANISM_ENV, Mechanism, PARENT_ENV, SandboxError, systemd};

/// One cgroup mount from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupMount {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The cgroup path (within the hierarchy) that the mount point shows, `/` unless bind-mounted.
    pub root: String,
    /// `None` for cgroup2, else the v1 controllers of this hierarchy (`memory`, `cpu`, ...).
    pub v1_controllers: Option<Vec<String>>,
}

/// The v1 directories under which a run's groups are made, one per controller used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct V1Parents {
    pub memory: PathBuf,
    pub cpu: Option<PathBuf>,
    pub cpuacct: Option<PathBuf>,
    pub pids: Option<PathBuf>,
    pub freezer: Option<PathBuf>,
}

/// The mechanism chosen at build time, with what it needs at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    CgroupV1(V1Parents),
    CgroupV2 { parent: PathBuf },
    Systemd,
    Rlimit,
}

impl Plan {
    pub(crate) fn mechanism(&self) -> Mechanism {
        match self {
            Plan::CgroupV1(_) => Mechanism::CgroupV1,
            Plan::CgroupV2 { .. } => Mechanism::CgroupV2,
            Plan::Systemd => Mechanism::SystemdRun,
            Plan::Rlimit => Mechanism::Rlimit,
        }
    }
}

/// Decodes the octal escapes (`\040` for a space) that mountinfo uses in paths.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Superblock options of a v1 cgroup mount that are not controller names.
const NOT_CONTROLLERS: &[&str] = &[
    "rw",
    "ro",
    "xattr",
    "noprefix",
    "clone_children",
    "cpuset_v2_mode",
    "favordynmods",
];

/// Parses the cgroup and cgroup2 mounts out of a mountinfo text; other lines are ignored, as are
/// malformed ones (the kernel writes this file; a line we cannot read is not one we can use).
pub(crate) fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    let mut mounts = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if left.len() < 5 || right.len() < 3 {
            continue;
        }
        let (root, mount_point) = (unescape(left[3]), PathBuf::from(unescape(left[4])));
        let v1_controllers = match right[0] {
            "cgroup2" => None,
            "cgroup" => Some(
                right[2]
                    .split(',')
                    .filter(|o| !NOT_CONTROLLERS.contains(o) && !o.contains('='))
                    .map(str::to_owned)
                    .collect(),
            ),
            _ => continue,
        };
        mounts.push(CgroupMount {
            mount_point,
            root,
            v1_controllers,
        });
    }
    mounts
}

/// Parses `/proc/self/cgroup`: `(controllers, path)` per line; the v2 line has no controllers.
pub(crate) fn parse_proc_cgroup(text: &str) -> Vec<(Vec<String>, String)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let ctrls = parts.next()?;
            let path = parts.next()?;
            let ctrls = ctrls
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
            Some((ctrls, path.to_owned()))
        })
        .collect()
}

/// The directory of cgroup `path` inside `mount`, honouring a mount that shows a sub-tree.
pub(crate) fn dir_in_mount(mount: &CgroupMount, path: &str) -> PathBuf {
    let rel = if mount.root != "/" {
        path.strip_prefix(mount.root.as_str()).unwrap_or(path)
    } else {
        path
    };
    mount.mount_point.join(rel.trim_start_matches('/'))
}

/// Where v1 groups go: the caller's own cgroup in each hierarchy, so limits above it still apply.
pub(crate) fn v1_parents(
    mounts: &[CgroupMount],
    own: &[(Vec<String>, String)],
) -> Result<V1Parents, String> {
    let find = |ctrl: &str| -> Option<PathBuf> {
        let mount = mounts.iter().find(|m| {
            m.v1_controllers
                .as_ref()
                .is_some_and(|c| c.iter().any(|x| x == ctrl))
        })?;
        let path = own
            .iter()
            .find(|(c, _)| c.iter().any(|x| x == ctrl))
            .map_or("/", |(_, p)| p.as_str());
        Some(dir_in_mount(mount, path))
    };
    let memory = find("memory").ok_or("no cgroup v1 memory hierarchy is mounted")?;
    let cpu = find("cpu");
    // A combined `cpu,cpuacct` mount is one directory; one group there serves both.
    let cpuacct = find("cpuacct");
    Ok(V1Parents {
        memory,
        cpu,
        cpuacct,
        pids: find("pids"),
        freezer: find("freezer"),
    })
}

/// Controllers a v2 group needs for these limits; memory always, for the peak and OOM counters.
pub(crate) fn v2_needed(limits: &Limits) -> Vec<&'static str> {
    let mut need = vec!["memory"];
    if limits.cpus.is_some() {
        need.push("cpu");
    }
    if limits.pids_max.is_some() {
        need.push("pids");
    }
    need
}

/// Makes sure `parent`'s children get `need`: enabled in `cgroup.subtree_control` already, or
/// enabled now (which the kernel refuses when `parent` itself holds processes).
pub(crate) fn v2_prepare_parent(parent: &Path, need: &[&str]) -> Result<(), String> {
    let read = |f: &str| {
        std::fs::read_to_string(parent.join(f))
            .map_err(|e| format!("{}: {e}", parent.join(f).display()))
    };
    let available = read("cgroup.controllers")?;
    let enabled = read("cgroup.subtree_control")?;
    for ctrl in need {
        if enabled.split_whitespace().any(|c| c == *ctrl) {
            continue;
        }
        if !available.split_whitespace().any(|c| c == *ctrl) {
            return Err(format!(
                "controller {ctrl} is not delegated to {} (cgroup.controllers: {:?})",
                parent.display(),
                available.trim()
            ));
        }
        std::fs::write(parent.join("cgroup.subtree_control"), format!("+{ctrl}")).map_err(|e| {
            format!(
                "cannot enable {ctrl} in {}/cgroup.subtree_control: {e} (a cgroup holding \
                 processes cannot enable controllers for its children)",
                parent.display()
            )
        })?;
    }
    Ok(())
}

pub(crate) fn writable(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// The v2 parent: `GAUNTLET_CGROUP_PARENT`, else the parent of our own cgroup (a delegated
/// subtree: our own cgroup holds processes, so it cannot host controller-enabled children), else
/// the mount's root.
fn v2_plan(
    mount: &CgroupMount,
    own: &[(Vec<String>, String)],
    limits: &Limits,
) -> Result<Plan, String> {
    let own_path = own
        .iter()
        .find(|(c, _)| c.is_empty())
        .map_or("/", |(_, p)| p.as_str());
    let own_dir = dir_in_mount(mount, own_path);
    let mut candidates = Vec::new();
    if let Some(p) = own_dir
        .parent()
        .filter(|p| p.starts_with(&mount.mount_point))
    {
        candidates.push(p.to_path_buf());
    }
    candidates.push(mount.mount_point.clone());
    v2_pick(&candidates, &v2_needed(limits))
}

fn v2_pick(candidates: &[PathBuf], need: &[&str]) -> Result<Plan, String> {
    let mut why = Vec::new();
    for parent in candidates {
        if !writable(parent) {
            why.push(format!("{} is not writable", parent.display()));
            continue;
        }
        match v2_prepare_parent(parent, need) {
            Ok(()) => {
                return Ok(Plan::CgroupV2 {
                    parent: parent.clone(),
                });
            }
            Err(e) => why.push(e),
        }
    }
    Err(format!("cgroup v2: {}", why.join("; ")))
}

fn cgroup_plan(limits: &Limits) -> Result<Plan, String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let (mounts, own) = (parse_mountinfo(&mountinfo), parse_proc_cgroup(&own));
    if let Ok(parent) = std::env::var(PARENT_ENV) {
        let parent = PathBuf::from(parent);
        let on = mounts
            .iter()
            .filter(|m| parent.starts_with(&m.mount_point))
            .max_by_key(|m| m.mount_point.as_os_str().len())
            .ok_or_else(|| format!("{PARENT_ENV}={} is not on a cgroup mount", parent.display()))?;
        return match &on.v1_controllers {
            None => v2_pick(&[parent], &v2_needed(limits)),
            Some(c) if c.iter().any(|x| x == "memory") => {
                let mut p = v1_parents(&mounts, &own)?;
                p.memory = parent;
                Ok(Plan::CgroupV1(p))
            }
            Some(_) => Err(format!(
                "{PARENT_ENV}={} must be on a cgroup2 mount or the v1 memory hierarchy",
                parent.display()
            )),
        };
    }
    // Pure v2 (or hybrid with the memory controller on v2): the unified hierarchy is the one.
    let v2 = mounts.iter().find(|m| {
        m.v1_controllers.is_none()
            && std::fs::read_to_string(m.mount_point.join("cgroup.controllers"))
                .is_ok_and(|c| c.split_whitespace().any(|x| x == "memory"))
    });
    if let Some(v2) = v2 {
        return v2_plan(v2, &own, limits);
    }
    let parents = v1_parents(&mounts, &own).map_err(|e| format!("cgroup v1: {e}"))?;
    if !writable(&parents.memory) {
        return Err(format!(
            "cgroup v1: {} is not writable (run as root, or use cgroup v2 with delegation)",
            parents.memory.display()
        ));
    }
    Ok(Plan::CgroupV1(parents))
}

/// Picks the first mechanism that works; `forced` (else `GAUNTLET_SANDBOX_MECHANISM`) restricts
/// the choice to one.
pub(crate) fn choose(
    limits: &Limits,
    allow_fallback: bool,
    forced: Option<Mechanism>,
) -> Result<Plan, SandboxError> {
    let forced = match forced {
        Some(Mechanism::CgroupV1 | Mechanism::CgroupV2) => Some("cgroup".to_string()),
        Some(m) => Some(m.as_str().to_string()),
        None => std::env::var(MECHANISM_ENV).ok(),
    };
    let want = |name: &str| forced.as_deref().is_none_or(|f| f == name);
    if let Some(f) = forced.as_deref()
        && !matches!(f, "cgroup" | "systemd-run" | "rlimit")
    {
        return Err(SandboxError::Unavailable {
            reason: format!("{MECHANISM_ENV}={f:?}; expected one of cgroup, systemd-run, rlimit"),
        });
    }
    let mut why = Vec::new();
    if want("cgroup") {
        match cgroup_plan(limits) {
            Ok(plan) => return Ok(plan),
            Err(e) => why.push(e),
        }
    }
    if want("systemd-run") {
        static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
        match PROBE.get_or_init(systemd::probe) {
            Ok(()) => return Ok(Plan::Systemd),
            Err(e) => why.push(format!("systemd-run: {e}")),
        }
    }
    if want("rlimit") {
        if allow_fallback || forced.is_some() {
            return Ok(Plan::Rlimit);
        }
        why.push("rlimit: not allowed (allow_fallback(false))".into());
    }
    Err(SandboxError::Unavailable {
        reason: why.join("; "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn mountinfo_lists_v1_controllers_without_options_and_names() {
        let m = parse_mountinfo(HYBRID);
        assert_eq!(m.len(), 5, "tmpfs line is not a cgroup mount");
        assert_eq!(
            m[0].v1_controllers.as_deref(),
            Some(&["cpu".to_string(), "cpuacct".to_string()][..])
        );
        assert_eq!(
            m[3].v1_controllers.as_deref(),
            Some(&[][..]),
            "name=systemd is not a controller"
        );
        assert_eq!(m[4].v1_controllers, None, "cgroup2 has no v1 controllers");
    }

    #[test]
    fn mountinfo_malformed_lines_are_skipped_not_fatal() {
        for bad in ["", "garbage", "1 2 3 - cgroup", "1 2 3 4 5 6 - cgroup2"] {
            assert!(parse_mountinfo(bad).is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn mountinfo_octal_escapes_are_decoded() {
        let m = parse_mountinfo("1 2 0:1 / /a\\040b rw - cgroup2 cgroup2 rw\n");
        assert_eq!(m[0].mount_point, PathBuf::from("/a b"));
    }

    #[test]
    fn v1_parents_follow_own_cgroup_per_hierarchy_and_share_combined_mounts() {
        let own = parse_proc_cgroup("4:memory:/job/42\n3:cpu,cpuacct:/\n2:pids:/p\n0::/\n");
        let p = v1_parents(&parse_mountinfo(HYBRID), &own).unwrap();
        assert_eq!(p.memory, PathBuf::from("/sys/fs/cgroup/memory/job/42"));
        assert_eq!(p.cpu, Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")));
        assert_eq!(p.cpu, p.cpuacct);
        assert_eq!(p.pids, Some(PathBuf::from("/sys/fs/cgroup/pids/p")));
        assert_eq!(p.freezer, None);
    }

    #[test]
    fn v1_without_memory_hierarchy_is_an_error_naming_it() {
        let mounts = parse_mountinfo("41 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        let err = v1_parents(&mounts, &[]).unwrap_err();
        assert!(err.contains("memory"), "{err}");
    }

    #[test]
    fn dir_in_mount_strips_a_bind_mounted_root() {
        let m = CgroupMount {
            mount_point: "/sys/fs/cgroup".into(),
            root: "/docker/abc".into(),
            v1_controllers: None,
        };
        assert_eq!(
            dir_in_mount(&m, "/docker/abc/x"),
            PathBuf::from("/sys/fs/cgroup/x")
        );
        assert_eq!(dir_in_mount(&m, "/"), PathBuf::from("/sys/fs/cgroup"));
    }

    fn fake_parent(controllers: &str, enabled: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("cgroup.controllers"), controllers).unwrap();
        std::fs::write(d.path().join("cgroup.subtree_control"), enabled).unwrap();
        d
    }

    #[test]
    fn v2_parent_with_controllers_enabled_is_accepted() {
        let d = fake_parent("cpu memory pids\n", "cpu memory pids\n");
        let plan = v2_pick(&[d.path().to_path_buf()], &["memory", "cpu", "pids"]).unwrap();
        assert_eq!(
            plan,
            Plan::CgroupV2 {
                parent: d.path().to_path_buf()
            }
        );
    }

    #[test]
    fn v2_parent_enables_a_delegated_but_disabled_controller() {
        let d = fake_parent("cpu memory pids\n", "memory\n");
        v2_prepare_parent(d.path(), &["memory", "pids"]).unwrap();
        // The fake file records the write the kernel would have applied.
        let written = std::fs::read_to_string(d.path().join("cgroup.subtree_control")).unwrap();
        assert_eq!(written, "+pids");
    }

    #[test]
    fn v2_parent_missing_a_controller_names_it_and_falls_to_next_candidate() {
        let bad = fake_parent("cpu\n", "cpu\n");
        let good = fake_parent("memory\n", "memory\n");
        let plan = v2_pick(&[bad.path().into(), good.path().into()], &["memory"]).unwrap();
        assert_eq!(
            plan,
            Plan::CgroupV2 {
                parent: good.path().into()
            }
        );
        let err = v2_pick(&[bad.path().into()], &["memory"]).unwrap_err();
        assert!(err.contains("memory is not delegated"), "{err}");
    }

    #[test]
    fn v2_needed_controllers_follow_the_limits() {
        let mut l = Limits::default();
        assert_eq!(v2_needed(&l), ["memory"]);
        l.cpus = Some(0.5);
        l.pids_max = Some(4);
        assert_eq!(v2_needed(&l), ["memory", "cpu", "pids"]);
    }
}
