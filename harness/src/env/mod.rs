//! What kind of machine the tests run on: CI, WSL, GPU, cgroup limits, instrumentation, nextest.
//!
//! Detection reads everything through a [`Probe`], so each branch is testable with a fake
//! tree. Nothing here decides budgets; [`crate::budget`] turns these facts into factors.

mod cgroup;
mod mounts;
mod probe;
mod wsl;

use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

pub use cgroup::{CgroupLimits, CgroupVersion};
pub use mounts::Mount;
pub use probe::Probe;
pub use wsl::Wsl;

/// Which continuous-integration system runs the tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ci {
    /// GitHub Actions (`GITHUB_ACTIONS=true`).
    GithubActions {
        /// `RUNNER_ENVIRONMENT=self-hosted`: our own hardware, not a shared 2-core VM.
        self_hosted: bool,
    },
    /// Another CI system (`CI` set to anything but `false`/`0`/empty).
    Generic,
}

/// A tool that slows the code under test by an order of magnitude.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instrumentation {
    /// Running under valgrind (its preload library is in `LD_PRELOAD`).
    Valgrind,
    /// Interpreted by Miri.
    Miri,
    /// A sanitizer runtime is preloaded (`libasan`, `libtsan`, `libmsan`, `liblsan`).
    Sanitizer(String),
    /// A debugger or tracer is attached (`TracerPid` in `/proc/self/status`).
    Debugger {
        /// The tracer's process id.
        tracer_pid: u32,
    },
    /// `GAUNTLET_INSTRUMENTED=1`: the user says so (coverage, profilers, emulators).
    Declared,
}

/// What nextest tells a test process about its run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NextestFacts {
    /// `NEXTEST_PROFILE`.
    pub profile: Option<String>,
    /// `NEXTEST_EXECUTION_MODE` (`process-per-test` means one test per process).
    pub execution_mode: Option<String>,
    /// `NEXTEST_ATTEMPT`, 1-based; above 1 this is a retry.
    pub attempt: Option<u32>,
    /// `NEXTEST_TOTAL_ATTEMPTS`.
    pub total_attempts: Option<u32>,
}

impl NextestFacts {
    /// Whether each test runs in its own process, so an abandoned thread ends with it.
    pub fn process_per_test(&self) -> bool {
        self.execution_mode.as_deref() == Some("process-per-test")
    }
}

/// Every fact detection found. Fields are public so tests can build a fixed environment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Environment {
    /// The CI system, if any.
    pub ci: Option<Ci>,
    /// WSL version, if running inside a WSL distribution (not a Docker Desktop container).
    pub wsl: Option<Wsl>,
    /// `/proc/sys/kernel/osrelease`.
    pub kernel_release: Option<String>,
    /// Docker Desktop's VM (linuxkit kernel, or a container on its WSL2 backend).
    pub docker_desktop: bool,
    /// A container marker (`docker` for `/.dockerenv`, `podman` for `/run/.containerenv`).
    pub container: Option<String>,
    /// Why this looks like a GPU runner (`/dev/nvidia0`, …); `None` when it does not.
    pub gpu: Option<String>,
    /// cgroup CPU quota and memory limit.
    pub cgroup: CgroupLimits,
    /// CPUs this process may be scheduled on (`Cpus_allowed_list`), before any quota.
    pub host_cpus: usize,
    /// Instrumentation slowing the run.
    pub instrumentation: Vec<Instrumentation>,
    /// Present when running under nextest (`NEXTEST=1` or `NEXTEST_EXECUTION_MODE` set).
    pub nextest: Option<NextestFacts>,
}

impl Environment {
    /// Detects the real environment of this process (cached after the first call, since
    /// every `#[timeout]` test asks and the facts do not change during a run).
    pub fn detect() -> &'static Environment {
        static CURRENT: OnceLock<Environment> = OnceLock::new();
        CURRENT.get_or_init(|| Self::detect_with(&Probe::system()))
    }

    /// Detects the environment seen through `probe`.
    pub fn detect_with(probe: &Probe) -> Environment {
        let kernel_release = probe
            .read("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned());
        let wsl = wsl::classify(probe, kernel_release.as_deref());
        let status = probe.read("/proc/self/status").unwrap_or_default();
        Environment {
            ci: detect_ci(probe),
            wsl: wsl.wsl,
            kernel_release,
            docker_desktop: wsl.docker_desktop,
            container: wsl.container.map(str::to_owned),
            gpu: detect_gpu(probe),
            cgroup: cgroup::detect(probe),
            host_cpus: host_cpus(probe, &status),
            instrumentation: detect_instrumentation(probe, &status),
            nextest: detect_nextest(probe),
        }
    }

    /// Cores the process can really use: scheduler affinity capped by the cgroup quota.
    pub fn usable_cores(&self) -> f64 {
        let host = self.host_cpus.max(1) as f64;
        self.cgroup.cpu_quota.map_or(host, |q| q.min(host))
    }

    /// Whether any instrumentation was detected.
    pub fn instrumented(&self) -> bool {
        !self.instrumentation.is_empty()
    }

    /// The facts that matter for timing, one `key: value` pair each, in a fixed order (used
    /// by timeout diagnostics and `gauntlet doctor`).
    pub fn facts(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let ci = match &self.ci {
            None => "none".to_owned(),
            Some(Ci::GithubActions { self_hosted: false }) => "github-actions (hosted)".to_owned(),
            Some(Ci::GithubActions { self_hosted: true }) => {
                "github-actions (self-hosted)".to_owned()
            }
            Some(Ci::Generic) => "generic (CI set)".to_owned(),
        };
        out.push(("ci", ci));
        let wsl = match self.wsl {
            None if self.docker_desktop => "no (Docker Desktop)".to_owned(),
            None => "no".to_owned(),
            Some(Wsl::V1) => "WSL1".to_owned(),
            Some(Wsl::V2) => "WSL2".to_owned(),
        };
        out.push(("wsl", wsl));
        if let Some(release) = &self.kernel_release {
            out.push(("kernel", release.clone()));
        }
        out.push(("gpu", self.gpu.clone().unwrap_or_else(|| "none".to_owned())));
        let quota = self
            .cgroup
            .cpu_quota
            .map_or("unlimited".to_owned(), |q| format!("{q:.2}"));
        out.push((
            "cores",
            format!(
                "{:.2} usable ({} cpus, quota {quota})",
                self.usable_cores(),
                self.host_cpus
            ),
        ));
        if let Some(mem) = self.cgroup.memory_limit {
            out.push(("memory limit", format!("{} MiB", mem / (1024 * 1024))));
        }
        if !self.instrumentation.is_empty() {
            let names: Vec<String> = self.instrumentation.iter().map(|i| i.to_string()).collect();
            out.push(("instrumented", names.join(", ")));
        }
        if let Some(n) = &self.nextest {
            let mut text = format!(
                "profile {}, mode {}",
                n.profile.as_deref().unwrap_or("?"),
                n.execution_mode.as_deref().unwrap_or("?")
            );
            if let Some(a) = n.attempt {
                text.push_str(&format!(", attempt {a}"));
                if let Some(t) = n.total_attempts {
                    text.push_str(&format!("/{t}"));
                }
            }
            out.push(("nextest", text));
        }
        out
    }

    /// The mount holding `path` as seen through `probe`, from `/proc/self/mountinfo`.
    pub fn mount_of(probe: &Probe, path: &Path) -> Option<Mount> {
        mounts::mount_of(probe, path)
    }
}

impl fmt::Display for Instrumentation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Valgrind => f.write_str("valgrind"),
            Self::Miri => f.write_str("miri"),
            Self::Sanitizer(name) => write!(f, "sanitizer ({name})"),
            Self::Debugger { tracer_pid } => write!(f, "debugger (TracerPid {tracer_pid})"),
            Self::Declared => f.write_str("declared (GAUNTLET_INSTRUMENTED)"),
        }
    }
}

fn truthy(value: Option<String>) -> bool {
    value.is_some_and(|v| !matches!(v.trim(), "" | "0" | "false" | "False" | "FALSE"))
}

fn detect_ci(probe: &Probe) -> Option<Ci> {
    if probe.var("GITHUB_ACTIONS").as_deref() == Some("true") {
        // Older GitHub Enterprise runners do not set RUNNER_ENVIRONMENT; treating them as
        // hosted gives the longer budget, which fails safe.
        let self_hosted = probe.var("RUNNER_ENVIRONMENT").as_deref() == Some("self-hosted");
        return Some(Ci::GithubActions { self_hosted });
    }
    truthy(probe.var("CI")).then_some(Ci::Generic)
}

fn detect_gpu(probe: &Probe) -> Option<String> {
    if probe.exists("/dev/nvidia0") {
        return Some("/dev/nvidia0".to_owned());
    }
    if probe.exists("/proc/driver/nvidia/version") {
        return Some("/proc/driver/nvidia/version".to_owned());
    }
    if let Some(dev) = probe.list("/dev").into_iter().find(|n| is_nvidia_device(n)) {
        return Some(format!("/dev/{dev}"));
    }
    // "" hides every device and "-1" / "NoDevFiles" are the documented ways to say none.
    let visible = probe.var("CUDA_VISIBLE_DEVICES")?;
    let visible = visible.trim();
    let none = visible.is_empty() || visible == "-1" || visible == "NoDevFiles";
    (!none).then(|| format!("CUDA_VISIBLE_DEVICES={visible}"))
}

fn is_nvidia_device(name: &str) -> bool {
    name.strip_prefix("nvidia")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn host_cpus(probe: &Probe, status: &str) -> usize {
    let allowed = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .and_then(count_cpu_list);
    let online = || {
        probe
            .read("/sys/devices/system/cpu/online")
            .and_then(|t| count_cpu_list(&t))
    };
    allowed
        .or_else(online)
        .or_else(|| {
            // Only the real system probe may fall back to asking the OS.
            (probe.root() == Path::new("/"))
                .then(|| std::thread::available_parallelism().ok().map(|n| n.get()))
                .flatten()
        })
        .unwrap_or(1)
}

/// Counts a kernel CPU list such as `0-3,8,10-11`.
fn count_cpu_list(text: &str) -> Option<usize> {
    let mut count = 0usize;
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                count += b.checked_sub(a)? + 1;
            }
            None => {
                part.trim().parse::<usize>().ok()?;
                count += 1;
            }
        }
    }
    (count > 0).then_some(count)
}

fn detect_instrumentation(probe: &Probe, status: &str) -> Vec<Instrumentation> {
    let mut out = Vec::new();
    let preload = probe.var("LD_PRELOAD").unwrap_or_default();
    if preload.contains("vgpreload") {
        out.push(Instrumentation::Valgrind);
    }
    if probe.under_miri() {
        out.push(Instrumentation::Miri);
    }
    for san in ["libasan", "libtsan", "libmsan", "liblsan"] {
        if preload.contains(san) {
            out.push(Instrumentation::Sanitizer(
                san.trim_start_matches("lib").to_owned(),
            ));
        }
    }
    let tracer = status
        .lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|&pid| pid != 0);
    if let Some(tracer_pid) = tracer {
        out.push(Instrumentation::Debugger { tracer_pid });
    }
    if truthy(probe.var("GAUNTLET_INSTRUMENTED")) {
        out.push(Instrumentation::Declared);
    }
    out
}

fn detect_nextest(probe: &Probe) -> Option<NextestFacts> {
    let mode = probe.var("NEXTEST_EXECUTION_MODE");
    if probe.var("NEXTEST").as_deref() != Some("1") && mode.is_none() {
        return None;
    }
    Some(NextestFacts {
        profile: probe.var("NEXTEST_PROFILE"),
        execution_mode: mode,
        attempt: probe
            .var("NEXTEST_ATTEMPT")
            .and_then(|a| a.trim().parse().ok()),
        total_attempts: probe
            .var("NEXTEST_TOTAL_ATTEMPTS")
            .and_then(|a| a.trim().parse().ok()),
    })
}
