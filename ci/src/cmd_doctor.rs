//! `gauntlet doctor`: everything about this machine that decides whether the tests
//! can pass here, with the fix for each problem found.
//!
//! It reads; it never changes the machine. Every probe of an outside tool (rustc,
//! nextest, nvidia-smi, dmesg, df) has a deadline, and a probe that fails or times out
//! is reported as unknown rather than stopping the report.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use clap::Args;
use gauntlet_harness::budget::{Budget, Class, Policy, Request};
use gauntlet_harness::env::{Environment, Probe};
use serde::Serialize;

use crate::cmd_run::recommended_profile;
use crate::exit;
use crate::history::{self, environment::output_within};

/// How long a quick probe (rustc, nextest, df, dmesg) may take.
const PROBE_DEADLINE: Duration = Duration::from_secs(10);
/// Used for `nvidia-smi` when gauntlet.toml cannot be read.
const DEFAULT_GPU_DEADLINE: Duration = Duration::from_secs(10);
const GIB: u64 = 1024 * 1024 * 1024;

/// Checks this machine for what the tests need.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print everything as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The whole report (`--json` prints it as is).
#[derive(Debug, Serialize)]
pub struct Doctor {
    /// Environment facts from the harness, `key: value`.
    pub environment: Vec<(String, String)>,
    /// Memory, swap, cgroup and disk.
    pub resources: Resources,
    /// GPU presence, driver, memory.
    pub gpu: Gpu,
    /// OOM kills seen by the cgroup and the kernel log.
    pub oom: Oom,
    /// rustc and cargo-nextest.
    pub toolchain: Toolchain,
    /// The nextest profile to use here and why.
    pub profile: ProfileAdvice,
    /// Timeout budgets and their derivation.
    pub budgets: Vec<BudgetLine>,
    /// Things that may make tests slow or flaky, each with a fix.
    pub warnings: Vec<String>,
    /// Things that stop the tests from passing here (exit 1).
    pub problems: Vec<String>,
}

/// Memory and disk.
#[derive(Debug, Default, Serialize)]
pub struct Resources {
    /// MemTotal.
    pub ram_total: Option<u64>,
    /// MemAvailable.
    pub ram_available: Option<u64>,
    /// SwapTotal.
    pub swap_total: Option<u64>,
    /// SwapFree.
    pub swap_free: Option<u64>,
    /// cgroup memory limit.
    pub cgroup_memory_limit: Option<u64>,
    /// cgroup memory in use.
    pub cgroup_memory_usage: Option<u64>,
    /// cgroup CPU quota in cores.
    pub cpu_quota: Option<f64>,
    /// Cores usable (affinity capped by quota).
    pub usable_cores: f64,
    /// Free bytes where `target/` lives.
    pub target_free: Option<u64>,
    /// Free bytes where the fixtures live.
    pub fixtures_free: Option<u64>,
    /// The fixture directory.
    pub fixtures_dir: PathBuf,
    /// Filesystem type of the fixture directory's mount.
    pub fixtures_fs: Option<String>,
}

/// GPU facts.
#[derive(Debug, Default, Serialize)]
pub struct Gpu {
    /// Why the harness thinks there is a GPU.
    pub detected: Option<String>,
    /// First line of /proc/driver/nvidia/version.
    pub driver: Option<String>,
    /// `nvidia-smi` name and memory, one line per GPU.
    pub devices: Vec<String>,
    /// How long nvidia-smi was allowed (the GPU init budget).
    pub probe_deadline_ms: u128,
}

/// OOM kill history.
#[derive(Debug, Default, Serialize)]
pub struct Oom {
    /// `oom_kill` from the cgroup's memory.events / memory.oom_control.
    pub cgroup_oom_kills: Option<u64>,
    /// Kernel log lines about OOM kills (None when the log is not readable).
    pub kernel_log: Option<Vec<String>>,
}

/// Toolchain versions.
#[derive(Debug, Default, Serialize)]
pub struct Toolchain {
    /// `rustc --version`.
    pub rustc: Option<String>,
    /// cargo-nextest version.
    pub nextest: Option<String>,
    /// `nextest-version.required` from .config/nextest.toml.
    pub nextest_required: Option<String>,
}

/// Which profile to run with.
#[derive(Debug, Serialize)]
pub struct ProfileAdvice {
    /// Profile name.
    pub profile: String,
    /// Why.
    pub reason: String,
    /// The command to run.
    pub command: String,
}

/// One timeout class's budget here.
#[derive(Debug, Serialize)]
pub struct BudgetLine {
    /// Class key.
    pub class: String,
    /// Budget in milliseconds.
    pub total_ms: u128,
    /// Product of the factors (the effective multiplier).
    pub multiplier: f64,
    /// `base × factor (why) … = total`.
    pub derivation: String,
}

/// Parses `/proc/meminfo` into (total, available, swap total, swap free) bytes.
pub fn meminfo(text: &str) -> [Option<u64>; 4] {
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kib| kib.saturating_mul(1024))
    };
    [
        get("MemTotal"),
        get("MemAvailable"),
        get("SwapTotal"),
        get("SwapFree"),
    ]
}

/// `oom_kill N` in a memory.events or memory.oom_control file.
pub fn oom_kills(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
}

/// Compares dotted versions numerically; `None` if either is not one.
pub fn version_at_least(have: &str, need: &str) -> Option<bool> {
    let parse =
        |s: &str| -> Option<Vec<u64>> { s.trim().split('.').map(|p| p.parse().ok()).collect() };
    Some(parse(have)? >= parse(need)?)
}

fn cgroup_dir() -> Option<(PathBuf, bool)> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        if controllers.is_empty() {
            return Some((Path::new("/sys/fs/cgroup").join(rel), true));
        }
        if controllers.split(',').any(|c| c == "memory") {
            return Some((Path::new("/sys/fs/cgroup/memory").join(rel), false));
        }
    }
    None
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn free_bytes(path: &Path) -> Option<u64> {
    // The nearest existing ancestor: target/ may not exist yet on a fresh clone.
    let existing = path.ancestors().find(|p| p.exists())?;
    let out = output_within(Command::new("df").arg("-Pk").arg(existing), PROBE_DEADLINE)?;
    let line = out.lines().nth(1)?;
    let kib: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

fn gib(v: Option<u64>) -> String {
    v.map_or("unknown".to_owned(), |b| {
        format!("{:.1} GiB", b as f64 / GIB as f64)
    })
}

fn nextest_required() -> Option<String> {
    let text = std::fs::read_to_string(".config/nextest.toml").ok()?;
    let v: toml::Value = toml::from_str(&text).ok()?;
    match v.get("nextest-version")? {
        toml::Value::String(s) => Some(s.clone()),
        t => t.get("required")?.as_str().map(str::to_owned),
    }
}

/// Gathers the report.
pub fn examine() -> Doctor {
    let env = Environment::detect();
    let probe = Probe::system();
    let mut warnings = Vec::new();
    let mut problems = Vec::new();

    let [ram_total, ram_available, swap_total, swap_free] =
        meminfo(&std::fs::read_to_string("/proc/meminfo").unwrap_or_default());
    let cgroup = cgroup_dir();
    let (usage, events) = match &cgroup {
        Some((dir, true)) => (
            read_u64(&dir.join("memory.current")),
            dir.join("memory.events"),
        ),
        Some((dir, false)) => (
            read_u64(&dir.join("memory.usage_in_bytes")),
            dir.join("memory.oom_control"),
        ),
        None => (None, PathBuf::new()),
    };
    let target = history::target_dir();
    let fixtures_dir = target.join("gauntlet-fixtures");
    let fixtures_fs = Environment::mount_of(
        &probe,
        &std::path::absolute(&fixtures_dir).unwrap_or(fixtures_dir.clone()),
    )
    .map(|m| m.fs_type);
    let resources = Resources {
        ram_total,
        ram_available,
        swap_total,
        swap_free,
        cgroup_memory_limit: env.cgroup.memory_limit,
        cgroup_memory_usage: usage,
        cpu_quota: env.cgroup.cpu_quota,
        usable_cores: env.usable_cores(),
        target_free: free_bytes(&target),
        fixtures_free: free_bytes(&fixtures_dir),
        fixtures_dir,
        fixtures_fs,
    };
    if matches!(
        resources.fixtures_fs.as_deref(),
        Some("9p" | "drvfs" | "v9fs")
    ) {
        warnings.push(format!(
            "fixtures are on a {} mount (a Windows drive seen from WSL): loading is several times slower; clone the repository inside the Linux filesystem (e.g. ~/src)",
            resources.fixtures_fs.as_deref().unwrap_or("9p")
        ));
    }
    if resources.swap_total == Some(0) && resources.ram_total.is_some_and(|r| r < 16 * GIB) {
        warnings.push(format!(
            "no swap with {} of RAM: a >1 GiB fixture plus a parallel build can meet the OOM killer; add swap or run with fewer test threads",
            gib(resources.ram_total)
        ));
    }
    if let Some(limit) = resources.cgroup_memory_limit
        && limit < 4 * GIB
    {
        warnings.push(format!("cgroup memory limit {} is below twice the 2 GiB model fixture; memory-heavy tests will be refused by pre-flight", gib(Some(limit))));
    }
    match resources.target_free {
        Some(f) if f < GIB => problems.push(format!(
            "only {} free for target/: builds and fixtures need several GiB; free disk space",
            gib(Some(f))
        )),
        Some(f) if f < 5 * GIB => warnings.push(format!(
            "only {} free for target/; the fixtures alone take over 1 GiB",
            gib(Some(f))
        )),
        _ => {}
    }

    let policy = Policy::for_crate(None).ok();
    let gpu_deadline = policy
        .as_ref()
        .map_or(DEFAULT_GPU_DEADLINE, |p| p.base(Class::GpuInitialization));
    let mut gpu = Gpu {
        detected: env.gpu.clone(),
        driver: std::fs::read_to_string("/proc/driver/nvidia/version")
            .ok()
            .and_then(|t| t.lines().next().map(|l| l.trim().to_owned())),
        devices: Vec::new(),
        probe_deadline_ms: gpu_deadline.as_millis(),
    };
    if gpu.detected.is_some() {
        match output_within(
            Command::new("nvidia-smi").args(["--query-gpu=name,memory.total,memory.used", "--format=csv,noheader"]),
            gpu_deadline,
        ) {
            Some(out) => gpu.devices = out.lines().map(|l| l.trim().to_owned()).filter(|l| !l.is_empty()).collect(),
            None => warnings.push(format!(
                "a GPU is present but nvidia-smi did not answer within the GPU init budget ({} ms); check the driver",
                gpu_deadline.as_millis()
            )),
        }
    }
    if std::env::var("GAUNTLET_REQUIRE_GPU").as_deref() == Ok("1") && gpu.detected.is_none() {
        problems.push("GAUNTLET_REQUIRE_GPU=1 but no GPU is visible (/dev/nvidia0, /proc/driver/nvidia, CUDA_VISIBLE_DEVICES); fix the runner or unset it".to_owned());
    }

    let kernel_log = output_within(&mut Command::new("dmesg"), PROBE_DEADLINE).map(|log| {
        log.lines()
            .filter(|l| {
                l.contains("Out of memory")
                    || l.contains("oom-kill")
                    || l.contains("Killed process")
            })
            .map(str::to_owned)
            .collect::<Vec<_>>()
    });
    let oom = Oom {
        cgroup_oom_kills: std::fs::read_to_string(&events)
            .ok()
            .and_then(|t| oom_kills(&t)),
        kernel_log,
    };
    let kernel_kills = oom.kernel_log.as_ref().map_or(0, Vec::len);
    if oom.cgroup_oom_kills.unwrap_or(0) > 0 || kernel_kills > 0 {
        warnings.push(format!(
            "the OOM killer has struck here ({} in this cgroup, {kernel_kills} kernel log lines): tests that die without a message may be memory, not bugs",
            oom.cgroup_oom_kills.unwrap_or(0)
        ));
    }

    let nextest = output_within(
        Command::new("cargo").args(["nextest", "--version"]),
        PROBE_DEADLINE,
    )
    .and_then(|o| {
        o.lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_owned)
    });
    let toolchain = Toolchain {
        rustc: output_within(Command::new("rustc").arg("--version"), PROBE_DEADLINE)
            .map(|s| s.trim().to_owned()),
        nextest,
        nextest_required: nextest_required(),
    };
    if toolchain.rustc.is_none() {
        problems.push("rustc is not on PATH; install Rust with rustup".to_owned());
    }
    match (&toolchain.nextest, &toolchain.nextest_required) {
        (None, _) => warnings.push("cargo-nextest is not installed: `cargo install --locked cargo-nextest` (gauntlet run falls back to cargo test without retries or timings)".to_owned()),
        (Some(have), Some(need)) if version_at_least(have, need) == Some(false) => problems.push(format!(
            "cargo-nextest {have} is older than the {need} that .config/nextest.toml requires: `cargo install --locked cargo-nextest`"
        )),
        _ => {}
    }

    let (profile, reason) = recommended_profile(env);
    let budgets = policy
        .as_ref()
        .map(|p| {
            Class::ALL
                .iter()
                .filter_map(|&class| {
                    let request = Request::class(class).on_path(&resources.fixtures_dir);
                    Budget::resolve(&request, p, env, &probe)
                        .ok()
                        .map(|b| BudgetLine {
                            class: class.key().to_owned(),
                            total_ms: b.total.as_millis(),
                            multiplier: b.product(),
                            derivation: b.to_string(),
                        })
                })
                .collect()
        })
        .unwrap_or_default();
    if policy.is_none() {
        warnings.push("no gauntlet.toml found from here upwards: budgets use built-in defaults; `gauntlet init` writes one".to_owned());
    }

    Doctor {
        environment: env
            .facts()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        resources,
        gpu,
        oom,
        toolchain,
        profile: ProfileAdvice {
            command: format!("gauntlet run --profile {profile}"),
            profile: profile.to_owned(),
            reason,
        },
        budgets,
        warnings,
        problems,
    }
}

fn print_human(d: &Doctor) {
    println!("environment");
    for (k, v) in &d.environment {
        println!("  {k:<14} {v}");
    }
    let r = &d.resources;
    println!("resources");
    println!(
        "  {:<14} {} total, {} available",
        "ram",
        gib(r.ram_total),
        gib(r.ram_available)
    );
    println!(
        "  {:<14} {} total, {} free",
        "swap",
        gib(r.swap_total),
        gib(r.swap_free)
    );
    println!(
        "  {:<14} limit {}, in use {}",
        "cgroup memory",
        r.cgroup_memory_limit
            .map_or("none".to_owned(), |l| gib(Some(l))),
        gib(r.cgroup_memory_usage)
    );
    println!(
        "  {:<14} {:.2} usable{}",
        "cpu",
        r.usable_cores,
        r.cpu_quota
            .map(|q| format!(" (quota {q:.2})"))
            .unwrap_or_default()
    );
    println!("  {:<14} {} free", "target/", gib(r.target_free));
    println!(
        "  {:<14} {} free on {} ({})",
        "fixtures",
        gib(r.fixtures_free),
        r.fixtures_dir.display(),
        r.fixtures_fs.as_deref().unwrap_or("?")
    );
    println!("gpu");
    println!(
        "  {:<14} {}",
        "detected",
        d.gpu.detected.as_deref().unwrap_or("none")
    );
    if let Some(driver) = &d.gpu.driver {
        println!("  {:<14} {driver}", "driver");
    }
    for dev in &d.gpu.devices {
        println!("  {:<14} {dev}", "device");
    }
    println!("oom kills");
    println!(
        "  {:<14} {}",
        "cgroup",
        d.oom
            .cgroup_oom_kills
            .map_or("unknown".to_owned(), |n| n.to_string())
    );
    println!(
        "  {:<14} {}",
        "kernel log",
        d.oom
            .kernel_log
            .as_ref()
            .map_or("not readable".to_owned(), |l| format!("{} lines", l.len()))
    );
    println!("toolchain");
    println!(
        "  {:<14} {}",
        "rustc",
        d.toolchain.rustc.as_deref().unwrap_or("missing")
    );
    println!(
        "  {:<14} {} (requires {})",
        "cargo-nextest",
        d.toolchain.nextest.as_deref().unwrap_or("missing"),
        d.toolchain.nextest_required.as_deref().unwrap_or("any")
    );
    println!("profile");
    println!(
        "  {:<14} {} ({})",
        "recommended", d.profile.profile, d.profile.reason
    );
    println!("  {:<14} {}", "run", d.profile.command);
    println!("budgets");
    for b in &d.budgets {
        println!("  {:<18} {}", b.class, b.derivation);
    }
    for w in &d.warnings {
        println!("WARNING {w}");
    }
    for p in &d.problems {
        println!("PROBLEM {p}");
    }
    if d.warnings.is_empty() && d.problems.is_empty() {
        println!("no problems found");
    }
}

/// Runs `gauntlet doctor`.
pub fn run(args: DoctorArgs) -> ExitCode {
    let report = examine();
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(j) => println!("{j}"),
            Err(e) => {
                eprintln!("error: cannot serialise the report: {e}");
                return exit::code(exit::IO);
            }
        }
    } else {
        print_human(&report);
    }
    exit::code(if report.problems.is_empty() {
        exit::OK
    } else {
        exit::IO
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_is_read_in_bytes() {
        let text = "MemTotal:       24576000 kB\nMemFree: 1 kB\nMemAvailable:   12288000 kB\nSwapTotal:             0 kB\nSwapFree: 0 kB\n";
        assert_eq!(
            meminfo(text),
            [
                Some(24_576_000 * 1024),
                Some(12_288_000 * 1024),
                Some(0),
                Some(0)
            ]
        );
    }

    #[rstest::rstest]
    #[case::cgroup_v2_events("low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n", Some(2))]
    #[case::cgroup_v1_oom_control("oom_kill_disable 0\nunder_oom 0\noom_kill 5\n", Some(5))]
    #[case::no_counter_is_unknown("low 0\n", None)]
    fn oom_counter(#[case] text: &str, #[case] want: Option<u64>) {
        assert_eq!(oom_kills(text), want);
    }

    #[rstest::rstest]
    #[case::newer_patch("0.9.143", "0.9.100", Some(true))]
    #[case::numeric_not_lexical("0.9.99", "0.9.100", Some(false))]
    #[case::equal("1.2.3", "1.2.3", Some(true))]
    #[case::garbage_is_unknown("dev", "0.9.100", None)]
    fn versions(#[case] have: &str, #[case] need: &str, #[case] want: Option<bool>) {
        assert_eq!(version_at_least(have, need), want);
    }
}
