//! `gauntlet run`: pick the nextest profile for this environment, run the tests with
//! JUnit output, record them, render the dashboard and summarise.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use gauntlet_harness::env::{Ci, Environment};

use crate::analysis::{self, Regression};
use crate::cmd_record::{self, Ingested, RecordArgs};
use crate::dashboard;
use crate::exit;
use crate::history::{self, History, environment::output_within};

/// Exit code when tests passed but `--fail-on-regression` found a regression.
pub const REGRESSION_EXIT: u8 = exit::REGRESSION;

/// How long probing `cargo nextest --version` or `cargo metadata` may take.
const PROBE_DEADLINE: Duration = Duration::from_secs(60);

/// The tool name under which gauntlet layers its nextest config (JUnit for every profile).
const TOOL: &str = "gauntlet";
/// JUnit file name gauntlet asks for when the repository's profile sets none.
const TOOL_JUNIT: &str = "gauntlet-junit.xml";

/// nextest profiles gauntlet knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// Choose from the environment (GPU → gpu, WSL → wsl2, CI → ci, else default).
    Auto,
    /// Local development.
    Default,
    /// GitHub Actions and other CI.
    Ci,
    /// WSL2, slow 9p file access.
    Wsl2,
    /// A self-hosted GPU runner.
    Gpu,
}

/// Runs the tests with the right profile, records them and prints a summary.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// nextest profile.
    #[arg(long, value_enum, default_value = "auto")]
    pub profile: Profile,
    /// Run only shard K of N (`K/N` means `hash:K/N`; `count:K/N` and `slice:K/N` pass through).
    #[arg(long, value_name = "K/N")]
    pub partition: Option<String>,
    /// History database (default: $GAUNTLET_DB, else target/gauntlet/history.sqlite).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Dashboard directory (default: target/gauntlet/dashboard).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run id to record under; shards given the same id merge into one run
    /// (default: $GITHUB_RUN_ID-$GITHUB_RUN_ATTEMPT in Actions, else unique).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Also exit non-zero (6) when tests passed but something regressed.
    #[arg(long)]
    pub fail_on_regression: bool,
    /// Give up on the whole test run after this long ("3h", "90m").
    #[arg(long, default_value = "3h", value_parser = humantime::parse_duration)]
    pub deadline: Duration,
    /// Configuration file whose [analysis] table sets the thresholds.
    #[arg(long, default_value = "gauntlet.toml")]
    pub config: PathBuf,
    /// Arguments passed to `cargo nextest run` (after `--`).
    #[arg(last = true)]
    pub nextest_args: Vec<String>,
}

/// The profile recommended for `env`, and why.
pub fn recommended_profile(env: &Environment) -> (&'static str, String) {
    if let Some(why) = &env.gpu {
        return ("gpu", format!("GPU present ({why})"));
    }
    if let Some(wsl) = &env.wsl {
        return ("wsl2", format!("running under {wsl:?}"));
    }
    match &env.ci {
        Some(Ci::GithubActions { self_hosted }) => (
            "ci",
            format!(
                "GitHub Actions ({})",
                if *self_hosted {
                    "self-hosted"
                } else {
                    "hosted"
                }
            ),
        ),
        Some(Ci::Generic) => ("ci", "CI is set".to_owned()),
        None => ("default", "local machine".to_owned()),
    }
}

fn profile_name(p: Profile) -> (&'static str, String) {
    match p {
        Profile::Auto => recommended_profile(Environment::detect()),
        Profile::Default => ("default", "--profile default".to_owned()),
        Profile::Ci => ("ci", "--profile ci".to_owned()),
        Profile::Wsl2 => ("wsl2", "--profile wsl2".to_owned()),
        Profile::Gpu => ("gpu", "--profile gpu".to_owned()),
    }
}

/// `K/N` → `hash:K/N`, validated.
pub fn partition_arg(text: &str) -> Result<String, String> {
    let (kind, spec) = match text.split_once(':') {
        Some((k, s)) => (k, s),
        None => ("hash", text),
    };
    let bad = || {
        format!(
            "--partition {text:?}: expected K/N with 1 <= K <= N (e.g. 2/3), optionally prefixed by hash:, count: or slice:"
        )
    };
    if !["hash", "count", "slice"].contains(&kind) {
        return Err(bad());
    }
    let (k, n) = spec.split_once('/').ok_or_else(bad)?;
    let (k, n): (u32, u32) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok(format!("{kind}:{k}/{n}"))
}

fn nextest_available() -> bool {
    output_within(
        Command::new("cargo").args(["nextest", "--version"]),
        PROBE_DEADLINE,
    )
    .is_some()
}

/// The project's cargo target directory and workspace root (from `cargo metadata`).
fn cargo_dirs() -> (PathBuf, PathBuf) {
    let meta = output_within(
        Command::new("cargo").args(["metadata", "--format-version", "1", "--no-deps"]),
        PROBE_DEADLINE,
    )
    .and_then(|json| serde_json::from_str::<serde_json::Value>(&json).ok());
    let get = |key: &str| {
        meta.as_ref()
            .and_then(|v| v[key].as_str())
            .map(PathBuf::from)
    };
    (
        get("target_directory").unwrap_or_else(history::target_dir),
        get("workspace_root").unwrap_or_else(|| PathBuf::from(".")),
    )
}

/// nextest's store directory: `[store] dir` of the repository config, relative to
/// the workspace root (nextest's default `target/nextest` does not follow
/// `CARGO_TARGET_DIR`).
fn nextest_store_dir(workspace: &Path) -> PathBuf {
    let configured = std::fs::read_to_string(workspace.join(".config/nextest.toml"))
        .ok()
        .and_then(|t| toml::from_str::<toml::Value>(&t).ok())
        .and_then(|v| v.get("store")?.get("dir")?.as_str().map(str::to_owned));
    workspace.join(configured.unwrap_or_else(|| "target/nextest".to_owned()))
}

/// The JUnit path the repository's `.config/nextest.toml` sets for `profile`, if any.
fn repo_junit_path(workspace: &Path, profile: &str) -> Option<String> {
    let text = std::fs::read_to_string(workspace.join(".config/nextest.toml")).ok()?;
    let v: toml::Value = toml::from_str(&text).ok()?;
    v.get("profile")?
        .get(profile)?
        .get("junit")?
        .get("path")?
        .as_str()
        .map(str::to_owned)
}

/// nextest config layered under the repository's: JUnit with stored output (for
/// `SKIP` reasons) for every profile that does not configure its own.
fn write_tool_config(dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = std::path::absolute(dir.join("nextest-tool.toml"))?;
    let mut text =
        String::from("# Written by `gauntlet run`; repository settings take precedence.\n");
    for p in ["default", "ci", "wsl2", "gpu"] {
        text.push_str(&format!(
            "[profile.{p}.junit]\npath = \"{TOOL_JUNIT}\"\nstore-success-output = true\n"
        ));
    }
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Waits for `child` until `deadline`, killing it then.
fn wait_within(child: &mut Child, deadline: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Err(_) => return None,
            Ok(None) if start.elapsed() >= deadline => {
                eprintln!(
                    "gauntlet: the test run exceeded --deadline {}; stopping it",
                    humantime::format_duration(deadline)
                );
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            // Polling a child that runs for minutes: a short sleep costs nothing here.
            Ok(None) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Runs nextest; returns its exit code and the results read from its JUnit.
fn run_nextest(
    args: &RunArgs,
    profile: &str,
    target: &Path,
    workspace: &Path,
) -> Result<(i32, Ingested), String> {
    let gauntlet_dir = target.join("gauntlet");
    let tool =
        write_tool_config(&gauntlet_dir).map_err(|e| format!("{}: {e}", gauntlet_dir.display()))?;
    let junit_name = repo_junit_path(workspace, profile).unwrap_or_else(|| TOOL_JUNIT.to_owned());
    let junit = nextest_store_dir(workspace).join(profile).join(&junit_name);
    // A JUnit left by an earlier run must not be mistaken for this one's.
    let _ = std::fs::remove_file(&junit);
    let mut cmd = Command::new("cargo");
    cmd.args(["nextest", "run", "--profile", profile])
        .arg("--tool-config-file")
        .arg(format!("{TOOL}:{}", tool.display()));
    if let Some(p) = &args.partition {
        cmd.arg("--partition").arg(partition_arg(p)?);
    }
    cmd.args(&args.nextest_args);
    println!(
        "gauntlet: cargo nextest run --profile {profile}{}",
        args.partition
            .as_deref()
            .map(|p| format!(" --partition {p}"))
            .unwrap_or_default()
    );
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start cargo nextest: {e}"))?;
    let status = wait_within(&mut child, args.deadline);
    let code = status.and_then(|s| s.code()).unwrap_or(1);
    if !junit.is_file() {
        return Err(format!(
            "nextest exited with {code} and wrote no JUnit at {} (did the build fail?)",
            junit.display()
        ));
    }
    let record = RecordArgs {
        db: None,
        junit: vec![junit],
        criterion: Vec::new(),
        bench_json: Vec::new(),
        run_id: None,
        commit: None,
        branch: None,
        profile: None,
        env_label: None,
    };
    Ok((code, cmd_record::ingest(&record)?))
}

/// The `cargo test` fallback: its output is echoed and parsed.
fn run_cargo_test(args: &RunArgs) -> Result<(i32, Ingested), String> {
    eprintln!(
        "gauntlet: cargo-nextest is not installed; install it with `cargo install --locked cargo-nextest`"
    );
    eprintln!("gauntlet: falling back to `cargo test` (no retries, no per-test timings, no JUnit)");
    if args.partition.is_some() {
        return Err("--partition needs cargo-nextest; install it or drop --partition".to_owned());
    }
    let (reader, writer) = std::io::pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
    let writer2 = writer
        .try_clone()
        .map_err(|e| format!("cannot create a pipe: {e}"))?;
    let mut cmd = Command::new("cargo");
    cmd.args(["test", "--no-fail-fast"])
        .args(&args.nextest_args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer2);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start cargo test: {e}"))?;
    drop(cmd);
    // Echo while collecting, so the user still sees progress; the reader ends when
    // the child (and every process holding the pipe) exits.
    let collector = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            println!("{line}");
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let status = wait_within(&mut child, args.deadline);
    let output = collector.join().unwrap_or_default();
    let tests = history::libtest::parse(&output);
    Ok((
        status.and_then(|s| s.code()).unwrap_or(1),
        Ingested {
            tests,
            benches: Vec::new(),
            started_at: None,
            duration_ms: None,
        },
    ))
}

/// Runs `gauntlet run`.
pub fn run(args: RunArgs) -> ExitCode {
    if let Some(p) = &args.partition
        && let Err(e) = partition_arg(p)
    {
        eprintln!("error: {e}");
        return exit::code(exit::INVALID);
    }
    let (profile, why) = profile_name(args.profile);
    println!("gauntlet: profile {profile} ({why})");
    let (target, workspace) = cargo_dirs();
    let outcome = if nextest_available() {
        run_nextest(&args, profile, &target, &workspace)
    } else {
        run_cargo_test(&args)
    };
    let (code, ingested) = match outcome {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::code(exit::IO);
        }
    };

    let record = RecordArgs {
        db: args.db.clone(),
        junit: Vec::new(),
        criterion: Vec::new(),
        bench_json: Vec::new(),
        run_id: args.run_id.clone().or_else(|| {
            std::env::var("GITHUB_RUN_ID")
                .is_err()
                .then(cmd_record::unique_run_id)
        }),
        commit: None,
        branch: None,
        profile: Some(profile.to_owned()),
        env_label: None,
    };
    let meta = cmd_record::run_meta(&record, &ingested);
    let db = match (
        &args.db,
        std::env::var_os(history::DB_ENV).filter(|p| !p.is_empty()),
    ) {
        (Some(d), _) => d.clone(),
        (None, Some(e)) => PathBuf::from(e),
        (None, None) => target.join("gauntlet").join("history.sqlite"),
    };
    let summary = match History::open(&db)
        .and_then(|mut h| h.record(&meta, &ingested.tests, &ingested.benches))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::code(exit::IO);
        }
    };
    println!("{}", cmd_record::describe(&summary, &ingested.tests, &db));

    let (config, runs) = match crate::cmd_dashboard::load(Some(&db), &args.config) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::code(exit::INVALID);
        }
    };
    let report = analysis::analyze(&runs, &config);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| target.join("gauntlet").join("dashboard"));
    match dashboard::render(&out, &runs, &report) {
        Ok(()) => {}
        Err(e) => eprintln!("warning: {e}"),
    }
    println!();
    print!("{}", dashboard::summary::text(&report));
    println!("dashboard: {}", out.join("index.html").display());
    write_step_summary(&dashboard::summary::markdown(&report));

    let regressed = report.regressions.iter().any(|r| match r {
        Regression::Benchmark(b) => b.run == summary.key,
        Regression::Duration(_) => true,
    });
    let final_code = exit_status(code, regressed, args.fail_on_regression);
    if final_code == REGRESSION_EXIT {
        eprintln!("gauntlet: tests passed but there are regressions (--fail-on-regression)");
    }
    exit::code(final_code)
}

/// The exit code: the test runner's, unless the tests passed and a regression must fail
/// the run. Codes outside 0..=255 (a signal) become 1.
pub fn exit_status(test_code: i32, regressed: bool, fail_on_regression: bool) -> u8 {
    let code = u8::try_from(test_code).unwrap_or(1);
    if code == 0 && regressed && fail_on_regression {
        REGRESSION_EXIT
    } else {
        code
    }
}

/// Appends the Markdown summary to `$GITHUB_STEP_SUMMARY` when Actions provides one.
fn write_step_summary(markdown: &str) {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return;
    };
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(markdown.as_bytes()));
    if let Err(e) = written {
        eprintln!(
            "warning: {}: cannot write the step summary: {e}",
            PathBuf::from(path).display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rstest::rstest]
    #[case::bare_is_hash("2/3", Some("hash:2/3"))]
    #[case::count_passes_through("count:1/2", Some("count:1/2"))]
    #[case::zero_shard_should_error("0/3", None)]
    #[case::shard_beyond_total_should_error("4/3", None)]
    #[case::unknown_kind_should_error("mod:1/2", None)]
    #[case::missing_slash_should_error("3", None)]
    fn partition(#[case] text: &str, #[case] want: Option<&str>) {
        assert_eq!(partition_arg(text).ok().as_deref(), want);
    }

    #[rstest::rstest]
    #[case::passing_clean_run_is_zero(0, false, true, 0)]
    #[case::regression_fails_only_when_asked(0, true, false, 0)]
    #[case::regression_with_the_flag_is_six(0, true, true, REGRESSION_EXIT)]
    #[case::test_failure_code_wins_over_regression(100, true, true, 100)]
    #[case::signal_or_unknown_is_one(-1, false, false, 1)]
    fn exit_code(#[case] test: i32, #[case] regressed: bool, #[case] flag: bool, #[case] want: u8) {
        assert_eq!(exit_status(test, regressed, flag), want);
    }

    #[test]
    fn gpu_beats_ci_and_wsl_when_choosing_a_profile() {
        let env = Environment {
            gpu: Some("/dev/nvidia0".to_owned()),
            ci: Some(Ci::GithubActions { self_hosted: true }),
            ..Environment::default()
        };
        assert_eq!(recommended_profile(&env).0, "gpu");
        assert_eq!(recommended_profile(&Environment::default()).0, "default");
    }
}
