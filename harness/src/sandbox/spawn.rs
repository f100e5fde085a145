//! Starts the command inside its group, waits for it with the deadline, collects its output and
//! counters, and labels the outcome.

use std::{
    io::{self, Read},
    os::{
        fd::{FromRawFd, OwnedFd, RawFd},
        unix::process::CommandExt,
    },
    path::PathBuf,
    process::{Command, Stdio},
    sync::{atomic::Ordering, mpsc},
    time::{Duration, Instant},
};

use super::{
    Output, Sandbox, SandboxError, SandboxOutcome,
    detect::Plan,
    group::{CgroupGroup, GroupGuard, GroupStats},
    label::{Facts, classify},
    rlimit, systemd,
};

/// How long output readers may take to finish once the group is dead.
const READER_BOUND: Duration = Duration::from_secs(2);
/// How often the cancel flag (and a systemd scope's counters) are looked at.
const TICK: Duration = Duration::from_millis(50);

/// The raw end of a wait: status and resource usage of the command itself.
struct Reaped {
    status: i32,
    rusage: libc::rusage,
    timed_out: bool,
}

/// How the group is killed, per mechanism.
enum Killer<'a> {
    Group(&'a CgroupGroup),
    Scope { pid: i32, dir: Option<PathBuf> },
    ProcessGroup(i32),
}

impl Killer<'_> {
    /// Kills everything; with `settle`, a process group is also waited for until it is gone
    /// (only meaningful once the command itself is reaped, or its zombie keeps the group alive).
    fn kill(&mut self, settle: bool) {
        match self {
            Killer::Group(g) => {
                if let Err(e) = g.kill_all() {
                    eprintln!("gauntlet sandbox: killing {}: {e}", g.path().display());
                }
            }
            Killer::Scope { pid, dir } => {
                if dir.is_none() {
                    *dir = systemd::scope_dir(*pid);
                }
                let killed = dir
                    .as_ref()
                    .is_some_and(|d| std::fs::write(d.join("cgroup.kill"), "1").is_ok());
                if !killed {
                    // SAFETY: kill(2) on the process group the child leads.
                    unsafe { libc::kill(-*pid, libc::SIGKILL) };
                }
            }
            Killer::ProcessGroup(pgid) if settle => kill_process_group(*pgid),
            // SAFETY: kill(2) on the process group the child leads.
            Killer::ProcessGroup(pgid) => unsafe {
                libc::kill(-*pgid, libc::SIGKILL);
            },
        }
    }
}

/// SIGKILLs a process group and waits (bounded) until no member is left, so callers can rely on
/// "killed" meaning "gone". A member that left the group (`setsid`) escapes: that is the rlimit
/// mechanism's known limit.
fn kill_process_group(pgid: i32) {
    // Orphaned members stay zombies until init reaps them; an init that never reaps only costs
    // this bound.
    const SETTLE: Duration = Duration::from_millis(500);
    let start = Instant::now();
    let mut pause = Duration::from_micros(100);
    // SAFETY: kill(2) on the process group the child leads; signal 0 only checks existence.
    while unsafe { libc::kill(-pgid, libc::SIGKILL) } == 0 && start.elapsed() < SETTLE {
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Written into every `cgroup.procs` fd by the child between fork and exec. Only
/// async-signal-safe calls: `write(2)` from a static buffer; errors abort the spawn.
fn join_groups(fds: &[RawFd]) -> io::Result<()> {
    for &fd in fds {
        // SAFETY: `fd` is open (inherited from the parent, close-on-exec); the buffer is static.
        let n = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
        if n != 1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

pub(crate) fn run(sb: &Sandbox, mut cmd: Command) -> Result<SandboxOutcome, SandboxError> {
    let mut unenforced = Vec::new();
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut guard: Option<GroupGuard> = None;
    match &sb.plan {
        Plan::CgroupV1(_) | Plan::CgroupV2 { .. } => {
            let g = CgroupGroup::create(&sb.plan, &sb.limits, &mut unenforced)?;
            let fds = g.group().join_fds();
            // SAFETY: the hook only calls write(2) on descriptors that stay open until spawn
            // returns (the guard owns them), which is async-signal-safe.
            unsafe { cmd.pre_exec(move || join_groups(&fds)) };
            guard = Some(g);
        }
        Plan::Systemd => {
            cmd = systemd::wrap(&cmd, &sb.limits);
            cmd.process_group(0);
        }
        Plan::Rlimit => {
            rlimit::apply(&mut cmd, &sb.limits, &mut unenforced);
            // Its own process group, so a timeout can kill grandchildren too.
            cmd.process_group(0);
        }
    }
    match sb.output {
        Output::Capture { .. } => {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
        }
        Output::Inherit => {
            cmd.stdin(Stdio::inherit())
                .stdout(Stdio::inherit())
                .stderr(Stdio::inherit());
        }
    }

    let start = Instant::now();
    let cgroup = guard
        .as_ref()
        .map(|g| g.group().path().display().to_string());
    let mut child = cmd.spawn().map_err(|source| SandboxError::Spawn {
        program,
        cgroup: cgroup.clone(),
        source,
    })?;
    let pid = child.id() as i32;
    let limit = match sb.output {
        Output::Capture { limit } => limit,
        Output::Inherit => 0,
    };
    let out_rx = child.stdout.take().map(|s| read_bounded(s, limit));
    let err_rx = child.stderr.take().map(|s| read_bounded(s, limit));

    let mut killer = match (&guard, &sb.plan) {
        (Some(g), _) => Killer::Group(g.group()),
        (None, Plan::Systemd) => Killer::Scope { pid, dir: None },
        (None, _) => Killer::ProcessGroup(pid),
    };
    let deadline = sb.limits.timeout.map(|t| start + t);
    let reaped = wait_with_deadline(pid, deadline, sb, &mut killer)?;
    let wall_s = start.elapsed().as_secs_f64();

    // Whatever the command left running dies with the group; this also closes the pipes that
    // background grandchildren hold, so the readers below finish.
    killer.kill(true);

    let stats = match (&guard, &killer) {
        (Some(g), _) => g.group().stats(),
        (None, Killer::Scope { dir: Some(d), .. }) => systemd::scope_stats(d),
        _ => GroupStats::default(),
    };
    if let Some(g) = guard
        && let Err(e) = g.finish()
    {
        eprintln!("gauntlet sandbox: cleanup: {e}");
    }
    let stdout = collect(out_rx, "stdout");
    let mut stderr = collect(err_rx, "stderr");
    if limit > 0 && stderr.len() > limit {
        stderr.truncate(limit);
    }

    let (exit_code, signal) = decode(reaped.status);
    let ru = &reaped.rusage;
    let rusage_cpu = tv(ru.ru_utime) + tv(ru.ru_stime);
    let termination = classify(Facts {
        exit_code,
        signal,
        timed_out: reaped.timed_out,
        oom_kills: stats.oom_kills,
        stderr: &stderr,
    });
    Ok(SandboxOutcome {
        termination,
        exit_code,
        signal,
        oom_killed: stats.oom_kills > 0,
        timed_out: reaped.timed_out,
        // ru_maxrss is in KiB on Linux.
        peak_memory_bytes: stats.peak.or_else(|| {
            matches!(sb.plan, Plan::Rlimit).then_some((ru.ru_maxrss.max(0) as u64) * 1024)
        }),
        cpu_time_s: stats.cpu_time_s.unwrap_or(rusage_cpu),
        cpu_throttled_s: stats.throttled_s,
        wall_s,
        stdout,
        stderr,
        mechanism: sb.plan.mechanism(),
        unenforced,
        limits: sb.limits.clone(),
        cgroup,
    })
}

fn tv(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

fn decode(status: i32) -> (Option<i32>, Option<i32>) {
    if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else if libc::WIFSIGNALED(status) {
        (None, Some(libc::WTERMSIG(status)))
    } else {
        (None, None)
    }
}

/// Reads a stream to its end on a thread, keeping at most `limit` bytes (the rest is drained so
/// the writer never blocks on a full pipe).
fn read_bounded(mut r: impl Read + Send + 'static, limit: usize) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 16 << 10];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = limit.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(kept);
    });
    rx
}

fn collect(rx: Option<mpsc::Receiver<Vec<u8>>>, name: &str) -> Vec<u8> {
    let Some(rx) = rx else { return Vec::new() };
    rx.recv_timeout(READER_BOUND).unwrap_or_else(|_| {
        format!(
            "[gauntlet sandbox: {name} was still open {READER_BOUND:?} after the group died; \
             a process outside the sandbox holds it]"
        )
        .into_bytes()
    })
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a non-negative return is a fresh descriptor we now own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn try_reap(pid: i32, flags: i32) -> Result<Option<(i32, libc::rusage)>, SandboxError> {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pointers are to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, flags, &mut ru) };
        if r == pid {
            return Ok(Some((status, ru)));
        }
        if r == 0 {
            return Ok(None);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(SandboxError::Wait {
                pid: pid as u32,
                detail: format!("wait4: {e}"),
            });
        }
    }
}

/// Blocks until the child's pidfd is readable (it exited) or `d` passes.
fn sleep_until_exit(pidfd: Option<&OwnedFd>, d: Duration) {
    use std::os::fd::AsRawFd;
    match pidfd {
        Some(fd) => {
            let mut p = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = d.as_millis().clamp(1, i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut p, 1, ms) };
        }
        // Kernels before 5.3 have no pidfd; a short sleep bounds the exit-detection latency.
        None => std::thread::sleep(d.min(Duration::from_millis(5))),
    }
}

fn wait_with_deadline(
    pid: i32,
    deadline: Option<Instant>,
    sb: &Sandbox,
    killer: &mut Killer<'_>,
) -> Result<Reaped, SandboxError> {
    let pidfd = pidfd_open(pid);
    let mut timed_out = false;
    loop {
        if let Some((status, rusage)) = try_reap(pid, libc::WNOHANG)? {
            return Ok(Reaped {
                status,
                rusage,
                timed_out,
            });
        }
        let now = Instant::now();
        let cancelled = sb
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed));
        if deadline.is_some_and(|d| now >= d) || cancelled {
            timed_out = !cancelled;
            killer.kill(false);
            return reap_after_kill(pid, pidfd.as_ref(), timed_out);
        }
        if let Killer::Scope {
            dir: dir @ None, ..
        } = killer
        {
            *dir = systemd::scope_dir(pid);
        }
        let mut slice = deadline.map_or(Duration::from_secs(3600), |d| d - now);
        // A systemd scope appears only after systemd-run has moved the child; look for it while
        // the command runs, since it is gone soon after the command ends.
        if sb.cancel.is_some() || matches!(killer, Killer::Scope { dir: None, .. }) {
            slice = slice.min(TICK);
        }
        sleep_until_exit(pidfd.as_ref(), slice);
    }
}

/// The child was sent SIGKILL; it must be gone within the kill bound.
fn reap_after_kill(
    pid: i32,
    pidfd: Option<&OwnedFd>,
    timed_out: bool,
) -> Result<Reaped, SandboxError> {
    let bound = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some((status, rusage)) = try_reap(pid, libc::WNOHANG)? {
            return Ok(Reaped {
                status,
                rusage,
                timed_out,
            });
        }
        let now = Instant::now();
        if now >= bound {
            return Err(SandboxError::Wait {
                pid: pid as u32,
                detail: "still alive 5s after SIGKILL (uninterruptible sleep?)".into(),
            });
        }
        sleep_until_exit(pidfd, bound - now);
    }
}
