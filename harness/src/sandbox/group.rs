//! A run's cgroup: one per run, named `gauntlet-<pid>-<n>`, removed by a drop guard, with stale
//! ones of dead owners swept.

use std::{
    fs,
    io::{self, Write},
    os::fd::{AsRawFd, OwnedFd, RawFd},
    path::{Path, PathBuf},
    sync::{
        Once,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use super::{
    Limits, SandboxError,
    cgroup_v1::V1Group,
    cgroup_v2::V2Group,
    detect::{self, Plan},
};

/// Prefix of every group this module makes; the sweep only ever touches names with it.
pub(crate) const PREFIX: &str = "gauntlet-";

/// How long killing a group and waiting for it to empty may take before giving up.
pub(crate) const KILL_BOUND: Duration = Duration::from_secs(5);

/// Counters read from the group after the run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct GroupStats {
    pub peak: Option<u64>,
    pub oom_kills: u64,
    pub cpu_time_s: Option<f64>,
    pub throttled_s: Option<f64>,
}

/// A live cgroup (v1: one directory per hierarchy; v2: one directory).
#[derive(Debug)]
pub(crate) enum CgroupGroup {
    V1(V1Group),
    V2(V2Group),
}

impl CgroupGroup {
    /// Makes the group for one run and applies `limits`; limits the kernel files cannot express
    /// are pushed to `unenforced`.
    pub(crate) fn create(
        plan: &Plan,
        limits: &Limits,
        unenforced: &mut Vec<String>,
    ) -> Result<GroupGuard, SandboxError> {
        static SWEEP: Once = Once::new();
        SWEEP.call_once(|| {
            sweep(plan);
        });
        let name = next_name();
        let group = match plan {
            Plan::CgroupV1(p) => CgroupGroup::V1(V1Group::create(p, &name, limits, unenforced)?),
            Plan::CgroupV2 { parent } => {
                CgroupGroup::V2(V2Group::create(parent, &name, limits, unenforced)?)
            }
            Plan::Systemd | Plan::Rlimit => {
                return Err(SandboxError::Unavailable {
                    reason: "this mechanism makes no cgroup of its own".into(),
                });
            }
        };
        Ok(GroupGuard(Some(group)))
    }

    /// File descriptors of `cgroup.procs` files; the child writes `0` into each before exec.
    pub(crate) fn join_fds(&self) -> Vec<RawFd> {
        let fds: &[OwnedFd] = match self {
            CgroupGroup::V1(g) => g.procs_fds(),
            CgroupGroup::V2(g) => g.procs_fds(),
        };
        fds.iter().map(AsRawFd::as_raw_fd).collect()
    }

    pub(crate) fn stats(&self) -> GroupStats {
        match self {
            CgroupGroup::V1(g) => g.stats(),
            CgroupGroup::V2(g) => g.stats(),
        }
    }

    /// Kills every process in the group and waits (bounded) until it is empty.
    pub(crate) fn kill_all(&self) -> Result<(), String> {
        match self {
            CgroupGroup::V1(g) => g.kill_all(KILL_BOUND),
            CgroupGroup::V2(g) => g.kill_all(KILL_BOUND),
        }
    }

    /// The directory holding the memory accounting, for messages.
    pub(crate) fn path(&self) -> &Path {
        match self {
            CgroupGroup::V1(g) => g.memory_dir(),
            CgroupGroup::V2(g) => g.dir(),
        }
    }

    fn remove(&self) -> Result<(), String> {
        match self {
            CgroupGroup::V1(g) => g.remove(KILL_BOUND),
            CgroupGroup::V2(g) => g.remove(KILL_BOUND),
        }
    }
}

/// Kills and removes the group when dropped, also while unwinding from a panic.
#[derive(Debug)]
pub(crate) struct GroupGuard(Option<CgroupGroup>);

impl GroupGuard {
    pub(crate) fn group(&self) -> &CgroupGroup {
        self.0.as_ref().expect("group present until finish or drop")
    }

    /// Kills what is left and removes the group, reporting failures (drop only logs them).
    pub(crate) fn finish(mut self) -> Result<(), String> {
        let Some(g) = self.0.take() else {
            return Ok(());
        };
        let killed = g.kill_all();
        let removed = g.remove();
        killed.and(removed)
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(g) = self.0.take() {
            let _ = g.kill_all();
            if let Err(e) = g.remove() {
                eprintln!(
                    "gauntlet sandbox: could not remove {}: {e}",
                    g.path().display()
                );
            }
        }
    }
}

pub(crate) fn next_name() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{PREFIX}{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The owner pid in a `gauntlet-<pid>-<n>` name.
pub(crate) fn owner_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(PREFIX)?;
    let (pid, n) = rest.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse::<i32>().ok().filter(|p| *p > 0)
}

pub(crate) fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 performs only the existence and permission check.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Groups of this process that still exist under the parents of `plan` (normally none between
/// runs).
pub(crate) fn own_groups(plan: &Plan) -> Vec<PathBuf> {
    let prefix = format!("{PREFIX}{}-", std::process::id());
    parents(plan)
        .into_iter()
        .filter_map(|p| fs::read_dir(p).ok())
        .flat_map(|rd| rd.flatten())
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .map(|e| e.path())
        .collect()
}

fn parents(plan: &Plan) -> Vec<&PathBuf> {
    match plan {
        Plan::CgroupV1(p) => [
            Some(&p.memory),
            p.cpu.as_ref(),
            p.cpuacct.as_ref(),
            p.pids.as_ref(),
            p.freezer.as_ref(),
        ]
        .into_iter()
        .flatten()
        .collect(),
        Plan::CgroupV2 { parent } => vec![parent],
        Plan::Systemd | Plan::Rlimit => vec![],
    }
}

/// Removes stale groups under the parents of `plan`; returns how many were removed.
fn sweep(plan: &Plan) -> usize {
    let mut removed = 0;
    for parent in parents(plan) {
        removed += sweep_dir(parent, pid_alive);
    }
    removed
}

/// Sweeps one parent directory; `alive` is injected so tests can play dead owners.
pub(crate) fn sweep_dir(parent: &Path, alive: impl Fn(i32) -> bool) -> usize {
    let Ok(entries) = fs::read_dir(parent) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name.to_str().and_then(owner_pid) else {
            continue;
        };
        if owner == std::process::id() as i32 || alive(owner) {
            continue;
        }
        let dir = entry.path();
        let _ = kill_listed_until_empty(&dir.join("cgroup.procs"), Duration::from_secs(1));
        if rmdir_bounded(&dir, Duration::from_secs(1)).is_ok() {
            removed += 1;
        }
    }
    removed
}

pub(crate) fn sweep_stale_now() -> usize {
    match detect::choose(&Limits::default(), false, None) {
        Ok(plan) => sweep(&plan),
        Err(_) => 0,
    }
}

/// Writes `value` to a cgroup interface file, naming the file on failure.
pub(crate) fn write_file(path: &Path, value: &str) -> Result<(), SandboxError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|source| cg_err(path, "open", source))?;
    f.write_all(value.as_bytes())
        .map_err(|source| cg_err(path, &format!("write {value:?} to"), source))
}

pub(crate) fn cg_err(path: &Path, action: &str, source: io::Error) -> SandboxError {
    SandboxError::Cgroup {
        path: path.display().to_string(),
        action: action.to_string(),
        source,
    }
}

/// Opens `cgroup.procs` for writing; the descriptor is close-on-exec so the command never sees it.
pub(crate) fn open_procs(dir: &Path) -> Result<OwnedFd, SandboxError> {
    let path = dir.join("cgroup.procs");
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map(OwnedFd::from)
        .map_err(|source| cg_err(&path, "open for joining", source))
}

/// Reads `key value` lines (memory.events, cpu.stat, memory.oom_control) for one key.
pub(crate) fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

pub(crate) fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn read_pids(procs: &Path) -> io::Result<Vec<i32>> {
    Ok(fs::read_to_string(procs)?
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect())
}

/// SIGKILLs every pid listed until the list is empty or `bound` passes. New processes forked
/// between reading and killing are caught on the next pass.
pub(crate) fn kill_listed_until_empty(procs: &Path, bound: Duration) -> Result<(), String> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(200);
    loop {
        let pids = read_pids(procs).map_err(|e| format!("{}: {e}", procs.display()))?;
        if pids.is_empty() {
            return Ok(());
        }
        for pid in &pids {
            // SAFETY: plain kill(2) on a pid read from the group's own list.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        if start.elapsed() > bound {
            return Err(format!(
                "{} still lists {pids:?} after {bound:?}",
                procs.display()
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Removes a cgroup directory, retrying while it drains (EBUSY) up to `bound`.
pub(crate) fn rmdir_bounded(dir: &Path, bound: Duration) -> Result<(), String> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(200);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if start.elapsed() > bound => {
                return Err(format!("rmdir {}: {e} after {bound:?}", dir.display()));
            }
            Err(_) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_accepts_only_well_formed_names() {
        let cases = [
            ("gauntlet-123-0", Some(123)),
            ("gauntlet-7-99", Some(7)),
            ("gauntlet-123", None),
            ("gauntlet-x-1", None),
            ("gauntlet-0-1", None),
            ("gauntlet-1-probe", None),
            ("other-1-1", None),
        ];
        for (name, want) in cases {
            assert_eq!(owner_pid(name), want, "{name}");
        }
    }

    #[test]
    fn sweep_removes_only_dead_owners_groups() {
        let d = tempfile::tempdir().unwrap();
        for name in ["gauntlet-111-0", "gauntlet-222-3", "not-ours-111-0"] {
            fs::create_dir(d.path().join(name)).unwrap();
        }
        let removed = sweep_dir(d.path(), |pid| pid == 222);
        assert_eq!(removed, 1);
        assert!(
            !d.path().join("gauntlet-111-0").exists(),
            "dead owner swept"
        );
        assert!(d.path().join("gauntlet-222-3").exists(), "live owner kept");
        assert!(
            d.path().join("not-ours-111-0").exists(),
            "foreign name kept"
        );
    }

    #[test]
    fn keyed_value_reads_the_named_counter() {
        let events = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed_value(events, "oom_kill"), Some(1));
        assert_eq!(keyed_value(events, "max"), Some(12));
        assert_eq!(keyed_value(events, "missing"), None);
        assert_eq!(keyed_value("oom_kill x\n", "oom_kill"), None);
    }

    #[test]
    fn names_are_unique_within_a_process() {
        let a = next_name();
        let b = next_name();
        assert_ne!(a, b);
        assert_eq!(owner_pid(&a), Some(std::process::id() as i32));
    }

    #[test]
    fn guard_kills_and_removes_the_group_when_the_caller_panics() {
        let limits = Limits::default();
        let plan = match detect::choose(&limits, false, Some(super::super::Mechanism::CgroupV1)) {
            Ok(p @ (Plan::CgroupV1(_) | Plan::CgroupV2 { .. })) => p,
            Ok(_) | Err(_) => {
                super::super::skip_or_fail("no direct cgroup here");
                return;
            }
        };
        let guard = CgroupGroup::create(&plan, &limits, &mut Vec::new()).unwrap();
        let dir = guard.group().path().to_path_buf();
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        fs::write(dir.join("cgroup.procs"), child.id().to_string()).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _held = guard;
            panic!("caller fails while the group is live");
        }));
        assert!(r.is_err());
        assert!(!dir.exists(), "{} survived the unwinding", dir.display());
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "the member was killed"
        );
    }
}
