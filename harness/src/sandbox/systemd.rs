//! `systemd-run --user --scope`: a transient scope made by the user's systemd, for machines where
//! cgroups cannot be made directly but a user session (with delegated controllers) exists.
//!
//! systemd removes the scope as soon as it is empty, so the counters are read right after the
//! command is reaped, which is best effort: when the scope is already gone the peak is unknown and
//! an OOM kill reads as a plain `SIGKILL`.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use super::{
    Limits,
    cgroup_v1::cfs_quota_us,
    cgroup_v2::stats_at,
    detect::{dir_in_mount, parse_mountinfo, parse_proc_cgroup},
    group::{GroupStats, PREFIX, next_name},
};

const PROBE_BOUND: Duration = Duration::from_secs(5);

/// Checks once that a user systemd answers and can make scopes.
pub(crate) fn probe() -> Result<(), String> {
    let mut child = Command::new("systemd-run")
        .args(["--user", "--scope", "--quiet", "--collect", "--", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run systemd-run: {e}"))?;
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                return Err(format!(
                    "`systemd-run --user --scope true` failed ({st}): {}",
                    err.trim()
                ));
            }
            Ok(None) if start.elapsed() > PROBE_BOUND => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`systemd-run --user --scope true` did not finish in {PROBE_BOUND:?}"
                ));
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) => return Err(format!("waiting for systemd-run: {e}")),
        }
    }
}

/// The systemd properties expressing `limits`.
pub(crate) fn properties(limits: &Limits) -> Vec<String> {
    let mut p = Vec::new();
    if let Some(m) = limits.memory_max {
        p.push(format!("MemoryMax={m}"));
    }
    if let Some(s) = limits.swap_max {
        p.push(format!("MemorySwapMax={s}"));
    }
    if let Some(c) = limits.cpus {
        // CPUQuota is a percentage of one CPU; keep the same rounding as the cgroup quota.
        p.push(format!("CPUQuota={}%", cfs_quota_us(c) / 1000));
    }
    if let Some(n) = limits.pids_max {
        p.push(format!("TasksMax={n}"));
    }
    p
}

/// `cmd` re-expressed as `systemd-run --user --scope … -- cmd`, keeping its env and directory.
pub(crate) fn wrap(cmd: &Command, limits: &Limits) -> Command {
    let mut w = Command::new("systemd-run");
    w.args(["--user", "--scope", "--quiet", "--collect"]);
    w.arg(format!("--unit={}", next_name()));
    for p in properties(limits) {
        w.arg("-p").arg(p);
    }
    w.arg("--").arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => w.env(k, v),
            None => w.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        w.current_dir(d);
    }
    w
}

/// The scope's directory once systemd-run has moved the child into it.
pub(crate) fn scope_dir(pid: i32) -> Option<PathBuf> {
    let own = parse_proc_cgroup(&std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?);
    let path = own.into_iter().find(|(c, _)| c.is_empty())?.1;
    if !path
        .rsplit('/')
        .next()
        .is_some_and(|leaf| leaf.starts_with(PREFIX))
    {
        return None;
    }
    let mounts = parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").ok()?);
    let v2 = mounts.iter().find(|m| m.v1_controllers.is_none())?;
    Some(dir_in_mount(v2, &path))
}

pub(crate) fn scope_stats(dir: &std::path::Path) -> GroupStats {
    stats_at(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_express_every_limit_in_systemd_syntax() {
        let limits = Limits {
            memory_max: Some(64 << 20),
            swap_max: Some(0),
            cpus: Some(0.5),
            pids_max: Some(16),
            timeout: Some(Duration::from_secs(1)),
        };
        assert_eq!(
            properties(&limits),
            [
                "MemoryMax=67108864",
                "MemorySwapMax=0",
                "CPUQuota=50%",
                "TasksMax=16"
            ]
        );
    }

    #[test]
    fn wrap_keeps_program_args_env_and_dir() {
        let mut cmd = Command::new("python3");
        cmd.args(["-c", "pass"])
            .env("A", "1")
            .env_remove("B")
            .current_dir("/tmp");
        let w = wrap(
            &cmd,
            &Limits {
                memory_max: Some(1 << 20),
                ..Limits::default()
            },
        );
        let args: Vec<_> = w
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let dash = args.iter().position(|a| a == "--").unwrap();
        assert_eq!(&args[dash + 1..], ["python3", "-c", "pass"]);
        assert!(args.contains(&"MemoryMax=1048576".to_string()));
        assert!(args.iter().any(|a| a.starts_with("--unit=gauntlet-")));
        assert_eq!(w.get_current_dir(), Some(std::path::Path::new("/tmp")));
        assert_eq!(w.get_envs().count(), 2);
    }
}
