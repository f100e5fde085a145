//! Acceptance from outside the workspace: builds harness/tests/outside-crate (a project that
//! depends only on gauntlet-harness, by path) and runs its tests, which hang on purpose.
//!
//! Target directory: under nextest the outer cargo has finished building and released its
//! lock, so the nested build shares `CARGO_TARGET_DIR` (or `target/`) and reuses compiled
//! dependencies. Under `cargo test` the outer cargo holds that lock until every test ends, so
//! a nested build there would wait forever; it uses `<target>/outside-crate` instead (slow the
//! first time, cached afterwards).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

const HANGING: [&str; 3] = [
    "hangs_spinning",
    "hangs_blocking_the_runtime_thread",
    "hangs_awaiting_never_ready",
];
const PASSING: [&str; 4] = [
    "passes",
    "passes_async",
    "panics_as_expected",
    "default_class_comes_from_this_crates_gauntlet_toml",
];
const BUILD_DEADLINE: Duration = Duration::from_secs(540);
const RUN_DEADLINE: Duration = Duration::from_secs(60);

fn outside_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/outside-crate")
}

fn under_nextest() -> bool {
    std::env::var_os("NEXTEST").is_some() || std::env::var_os("NEXTEST_EXECUTION_MODE").is_some()
}

fn target_dir() -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    if under_nextest() {
        base
    } else {
        base.join("outside-crate")
    }
}

/// A command with a clean environment: nothing from the outer cargo, nextest or CI leaks in.
fn clean(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear();
    for keep in [
        "PATH",
        "HOME",
        "CARGO_HOME",
        "RUSTUP_HOME",
        "RUSTUP_TOOLCHAIN",
        "TMPDIR",
        "LANG",
    ] {
        if let Some(value) = std::env::var_os(keep) {
            cmd.env(keep, value);
        }
    }
    cmd.env("CARGO_TARGET_DIR", target_dir())
        .env("CARGO_TERM_COLOR", "never");
    cmd.current_dir(outside_dir());
    cmd
}

/// Runs to completion or kills the child at `deadline`; returns the output and wall time.
fn run(mut cmd: Command, deadline: Duration) -> (Output, Duration) {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(deadline) {
        Ok(output) => (output.expect("collect output"), start.elapsed()),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("{cmd:?} did not finish within {deadline:?}; killed pid {pid}");
        }
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Builds the outside crate's test binary once per process; returns its path.
fn test_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let mut cmd = clean(cargo());
        cmd.args([
            "test",
            "--offline",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ]);
        let (output, _) = run(cmd, BUILD_DEADLINE);
        let all = text(&output);
        assert!(
            output.status.success(),
            "building the outside crate failed (if a dependency is missing offline, refresh \
             harness/tests/outside-crate/Cargo.lock from the workspace's):\n{all}"
        );
        let line = all
            .lines()
            .filter(|l| l.contains("\"name\":\"acceptance\""))
            .find_map(|l| l.split("\"executable\":\"").nth(1))
            .unwrap_or_else(|| panic!("no acceptance test executable in cargo's output:\n{all}"));
        PathBuf::from(line.split('"').next().unwrap_or_default())
    })
}

/// The total from the diagnostic's `budget:` line (`… = 1.2s [literal]`).
fn budget_total(output: &str) -> (String, Duration) {
    let line = output
        .lines()
        .find(|l| l.trim_start().starts_with("budget:"))
        .unwrap_or_else(|| panic!("no budget line in:\n{output}"));
    let total = line
        .rsplit(" = ")
        .next()
        .and_then(|t| t.split(" [").next())
        .unwrap_or_default();
    let total = humantime::parse_duration(total.trim())
        .unwrap_or_else(|e| panic!("total in {line:?}: {e}"));
    (line.trim().to_owned(), total)
}

fn run_one(name: &str, vars: &[(&str, &str)]) -> (Output, Duration) {
    let mut cmd = clean(test_binary());
    cmd.args([name, "--exact", "--test-threads=1"]);
    cmd.envs(vars.iter().copied());
    run(cmd, RUN_DEADLINE)
}

fn assert_hangs_fail_on_time(vars: &[(&str, &str)], derivation_parts: &[&str]) {
    for name in HANGING {
        let (output, elapsed) = run_one(name, vars);
        let all = text(&output);
        assert!(!output.status.success(), "{name} must fail:\n{all}");
        assert!(
            all.contains("ran out of its time budget"),
            "{name} diagnostic:\n{all}"
        );
        assert!(
            all.contains("the body's thread was abandoned"),
            "{name} says the thread's fate:\n{all}"
        );
        let (line, total) = budget_total(&all);
        assert!(line.contains("200ms"), "{line}");
        for part in derivation_parts {
            assert!(line.contains(part), "{name}: {line:?} lacks {part:?}");
        }
        assert!(
            elapsed >= total,
            "{name} failed before its budget: {elapsed:?} < {total:?}"
        );
        assert!(
            elapsed < total + Duration::from_secs(1),
            "{name} took {elapsed:?}, budget {total:?} + 1s"
        );
    }
}

#[test]
fn outside_crate_hanging_tests_fail_within_budget_with_diagnostic() {
    assert_hangs_fail_on_time(&[], &[]);
}

#[test]
fn outside_crate_derivation_shows_ci_factor_and_multiplier() {
    let vars = [
        ("GAUNTLET_TEST_TIMEOUT_MULTIPLIER", "3"),
        ("GITHUB_ACTIONS", "true"),
    ];
    assert_hangs_fail_on_time(
        &vars,
        &[
            "× 2.0 (github-actions, hosted)",
            "× 3.0 (GAUNTLET_TEST_TIMEOUT_MULTIPLIER)",
        ],
    );
}

#[test]
fn outside_crate_passing_and_should_panic_tests_pass() {
    for name in PASSING {
        let (output, _) = run_one(name, &[]);
        assert!(
            output.status.success(),
            "{name} must pass:\n{}",
            text(&output)
        );
        assert!(
            text(&output).contains("1 passed"),
            "{name} ran:\n{}",
            text(&output)
        );
    }
}

#[test]
fn outside_crate_under_nextest_ends_each_hung_test_with_its_process() {
    let probe = Command::new(cargo())
        .args(["nextest", "--version"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var("GAUNTLET_REQUIRE_NEXTEST").as_deref() != Ok("1"),
            "GAUNTLET_REQUIRE_NEXTEST=1 but cargo-nextest is not installed"
        );
        println!("SKIP cargo-nextest is not installed");
        return;
    }
    test_binary();
    let mut cmd = clean(cargo());
    cmd.args([
        "nextest",
        "run",
        "--offline",
        "--no-fail-fast",
        "--failure-output",
        "final",
        "--status-level",
        "all",
    ]);
    let (output, _) = run(cmd, BUILD_DEADLINE);
    let all = text(&output);
    assert!(
        !output.status.success(),
        "hung tests must fail the run:\n{all}"
    );
    for name in HANGING {
        let line = all
            .lines()
            .find(|l| l.contains("FAIL [") && l.trim_end().ends_with(name))
            .unwrap_or_else(|| panic!("{name} not reported as failed:\n{all}"));
        let secs: f64 = line
            .split('[')
            .nth(1)
            .and_then(|s| s.split('s').next())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| panic!("no time in {line:?}"));
        let (_, total) = budget_total(&all);
        assert!(
            Duration::from_secs_f64(secs) < total + Duration::from_secs(1),
            "{line}"
        );
    }
    for name in PASSING {
        assert!(
            all.lines()
                .any(|l| l.contains("PASS [") && l.trim_end().ends_with(name)),
            "{name}:\n{all}"
        );
    }
    assert!(
        all.contains("nextest runs this test in its own process"),
        "{all}"
    );
}
