//! `gauntlet check-config`: proves `.config/nextest.toml` and `gauntlet.toml` agree.
//!
//! For every nextest profile, the outer kill limit (slow-timeout period × terminate-after)
//! must come later than the largest in-process budget (every `[timeouts]` class × the
//! factors of the environments `[nextest-profiles]` names for that profile × the multiplier),
//! so a hung test fails with the harness's diagnostic instead of a bare kill. Per-test
//! overrides that set their own slow-timeout are held to the same bound, and every test group
//! an override names must be defined in `[test-groups]`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use gauntlet_harness::budget::{Class, Policy, format_duration, format_factor};

use crate::exit;

/// Arguments of `gauntlet check-config`.
#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// The timeout policy (default: gauntlet.toml found from the current directory upwards).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The nextest config (default: .config/nextest.toml next to gauntlet.toml).
    #[arg(long)]
    pub nextest: Option<PathBuf>,
    /// Assume this GAUNTLET_TEST_TIMEOUT_MULTIPLIER (budgets grow, kill limits do not).
    #[arg(long, default_value_t = 1.0)]
    pub multiplier: f64,
}

/// One profile's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileCheck {
    /// nextest profile name.
    pub profile: String,
    /// Environments from `[nextest-profiles]`.
    pub environments: Vec<String>,
    /// Product of their factors × the multiplier.
    pub factor: f64,
    /// The largest class and its scaled budget.
    pub largest: (Class, Duration),
    /// The profile's kill limit, if it has one.
    pub kill: Option<Duration>,
}

/// The outcome: one row per profile, and every problem found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Rows, in profile-name order.
    pub profiles: Vec<ProfileCheck>,
    /// Human-readable problems; empty means the files agree.
    pub problems: Vec<String>,
}

/// Runs the command.
pub fn run(args: CheckConfigArgs) -> ExitCode {
    exit::code(execute(&args))
}

/// The command's work; returns the exit code (kept separate so tests can check it).
fn execute(args: &CheckConfigArgs) -> u8 {
    if !(args.multiplier.is_finite() && args.multiplier > 0.0) {
        eprintln!(
            "error: --multiplier {} is invalid; expected a finite number greater than 0, such as 3",
            args.multiplier
        );
        return exit::INVALID;
    }
    let config = match args.config.clone().or_else(find_config) {
        Some(path) => path,
        None => {
            eprintln!(
                "error: no gauntlet.toml found from the current directory upwards; pass --config"
            );
            return exit::INVALID;
        }
    };
    let nextest = args.nextest.clone().unwrap_or_else(|| {
        config
            .parent()
            .unwrap_or(Path::new("."))
            .join(".config/nextest.toml")
    });
    let policy = match Policy::load(&config) {
        Ok(policy) => policy,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    let text = match std::fs::read_to_string(&nextest) {
        Ok(text) => text,
        Err(e) => {
            eprintln!(
                "error: cannot read {}: {e}; pass --nextest",
                nextest.display()
            );
            return exit::IO;
        }
    };
    let report = check(&policy, &text, &nextest, args.multiplier);
    print!("{}", render(&report));
    if report.problems.is_empty() {
        println!("ok: {} and {} agree", config.display(), nextest.display());
        exit::OK
    } else {
        for problem in &report.problems {
            eprintln!("error: {problem}");
        }
        exit::INVALID
    }
}

fn find_config() -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .map(|d| d.join("gauntlet.toml"))
        .find(|p| p.is_file())
}

/// A profile's slow-timeout: `period`, and `terminate-after` when set.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SlowTimeout {
    period: Duration,
    terminate_after: Option<u64>,
}

impl SlowTimeout {
    fn kill(self) -> Option<Duration> {
        let n = u32::try_from(self.terminate_after?).ok()?;
        self.period.checked_mul(n)
    }
}

const SLOW_TIMEOUT_FORM: &str =
    "a table ({ period = \"60s\", terminate-after = 2 }) or a string (\"60s\")";

fn parse_slow_timeout(value: &toml::Value, at: &str) -> Result<SlowTimeout, String> {
    let period_of = |v: &toml::Value| -> Result<Duration, String> {
        let text = v
            .as_str()
            .ok_or_else(|| format!("{at}: period must be a duration string such as \"60s\""))?;
        humantime::parse_duration(text).map_err(|e| format!("{at}: period {text:?}: {e}"))
    };
    match value {
        toml::Value::String(_) => Ok(SlowTimeout {
            period: period_of(value)?,
            terminate_after: None,
        }),
        toml::Value::Table(t) => {
            let period = t
                .get("period")
                .ok_or_else(|| format!("{at}: missing `period`; expected {SLOW_TIMEOUT_FORM}"))?;
            let terminate_after = match t.get("terminate-after") {
                None => None,
                Some(toml::Value::Integer(n)) if *n > 0 => Some(*n as u64),
                Some(other) => {
                    return Err(format!(
                        "{at}: terminate-after = {other} must be a positive integer"
                    ));
                }
            };
            Ok(SlowTimeout {
                period: period_of(period)?,
                terminate_after,
            })
        }
        other => Err(format!(
            "{at}: slow-timeout = {other}; expected {SLOW_TIMEOUT_FORM}"
        )),
    }
}

/// Checks `nextest` (the text of `.config/nextest.toml`, read from `path`) against `policy`.
pub fn check(policy: &Policy, nextest: &str, path: &Path, multiplier: f64) -> Report {
    let mut report = Report::default();
    let doc: toml::Table = match nextest.parse() {
        Ok(doc) => doc,
        Err(e) => {
            report.problems.push(format!(
                "{} is not valid TOML: {}",
                path.display(),
                e.to_string().trim()
            ));
            return report;
        }
    };
    let empty = toml::Table::new();
    let profiles = doc
        .get("profile")
        .and_then(toml::Value::as_table)
        .unwrap_or(&empty);
    let groups = doc
        .get("test-groups")
        .and_then(toml::Value::as_table)
        .unwrap_or(&empty);
    let mut names: Vec<String> = profiles.keys().cloned().collect();
    if !names.iter().any(|n| n == "default") {
        names.push("default".into());
    }
    names.sort();
    for name in policy.nextest_profiles.keys() {
        if !names.contains(name) {
            report.problems.push(format!(
                "gauntlet.toml [nextest-profiles] names profile `{name}`, which {} does not define",
                path.display()
            ));
        }
    }
    for name in &names {
        let Some(environments) = policy.nextest_profiles.get(name) else {
            report.problems.push(format!(
                "profile `{name}` has no entry in gauntlet.toml [nextest-profiles]; add \
                 `{name} = [\"<environment>\", …]` so its budgets can be checked"
            ));
            continue;
        };
        let factor = environments
            .iter()
            .map(|e| policy.factor(e))
            .product::<f64>()
            * multiplier;
        let largest = Class::ALL
            .into_iter()
            .map(|c| (c, policy.base(c).mul_f64(factor)))
            .max_by_key(|(_, d)| *d)
            .unwrap_or((Class::TestDefault, Duration::ZERO));
        let base_timeout = match effective_slow_timeout(profiles, name) {
            Ok(t) => t,
            Err(e) => {
                report.problems.push(e);
                None
            }
        };
        let kill = base_timeout.and_then(SlowTimeout::kill);
        let why = format!(
            "{} may run {} × {} ({}) = {}",
            largest.0,
            format_duration(policy.base(largest.0)),
            format_factor(factor),
            environments.join(" × "),
            format_duration(largest.1)
        );
        match (base_timeout, kill) {
            (_, Some(kill)) if kill > largest.1 => {}
            (Some(t), Some(kill)) => report.problems.push(format!(
                "profile `{name}`: nextest kills at {} × {} = {}, but {why}; raise \
                 terminate-after to at least {} or lower [timeouts] in gauntlet.toml",
                format_duration(t.period),
                t.terminate_after.unwrap_or(0),
                format_duration(kill),
                needed(t.period, largest.1)
            )),
            _ => report.problems.push(format!(
                "profile `{name}`: slow-timeout has no terminate-after, so nextest never kills a \
                 hung test; set slow-timeout = {{ period = \"60s\", terminate-after = N }} with a \
                 kill later than {why}"
            )),
        }
        for (index, over) in overrides(&doc, name).into_iter().enumerate() {
            let at = format!("profile `{name}` override #{}", index + 1);
            if let Some(group) = over.get("test-group").and_then(toml::Value::as_str)
                && group != "@global"
                && !groups.contains_key(group)
            {
                report.problems.push(format!(
                    "{at}: test-group `{group}` is not defined in [test-groups] of {}",
                    path.display()
                ));
            }
            if let Some(value) = over.get("slow-timeout") {
                match parse_slow_timeout(value, &at).map(SlowTimeout::kill) {
                    Ok(Some(kill)) if kill > largest.1 => {}
                    Ok(Some(kill)) => report.problems.push(format!(
                        "{at}: its slow-timeout kills at {}, but {why}",
                        format_duration(kill)
                    )),
                    Ok(None) => {}
                    Err(e) => report.problems.push(e),
                }
            }
        }
        report.profiles.push(ProfileCheck {
            profile: name.clone(),
            environments: environments.clone(),
            factor,
            largest,
            kill,
        });
    }
    report
}

/// The smallest terminate-after whose kill comes after `budget`.
fn needed(period: Duration, budget: Duration) -> u128 {
    let period = period.as_millis().max(1);
    budget.as_millis() / period + 1
}

/// The slow-timeout a profile ends up with: its own, else its `inherits` parent's, else the
/// default profile's.
fn effective_slow_timeout(
    profiles: &toml::Table,
    name: &str,
) -> Result<Option<SlowTimeout>, String> {
    let mut current = name.to_owned();
    for _ in 0..16 {
        let table = profiles.get(&current).and_then(toml::Value::as_table);
        if let Some(value) = table.and_then(|t| t.get("slow-timeout")) {
            return parse_slow_timeout(value, &format!("profile `{current}`")).map(Some);
        }
        if current == "default" {
            return Ok(None);
        }
        current = table
            .and_then(|t| t.get("inherits"))
            .and_then(toml::Value::as_str)
            .unwrap_or("default")
            .to_owned();
    }
    Err(format!(
        "profile `{name}`: `inherits` chain is longer than 16 or cyclic"
    ))
}

/// The profile's own overrides, then the default profile's (nextest applies both).
fn overrides<'a>(doc: &'a toml::Table, name: &str) -> Vec<&'a toml::Table> {
    let of = |profile: &str| -> Vec<&'a toml::Table> {
        doc.get("profile")
            .and_then(|p| p.get(profile))
            .and_then(|p| p.get("overrides"))
            .and_then(toml::Value::as_array)
            .map(|a| a.iter().filter_map(toml::Value::as_table).collect())
            .unwrap_or_default()
    };
    let mut out = of(name);
    if name != "default" {
        out.extend(of("default"));
    }
    out
}

/// The aligned table printed on success and failure alike.
pub fn render(report: &Report) -> String {
    let mut out = format!(
        "{:<10} {:<44} {:>6}  {:<28} {}\n",
        "profile", "environments", "factor", "largest budget", "kill"
    );
    for row in &report.profiles {
        let kill = row.kill.map_or("never".to_owned(), format_duration);
        let largest = format!("{} {}", row.largest.0, format_duration(row.largest.1));
        out.push_str(&format!(
            "{:<10} {:<44} {:>6}  {:<28} {}\n",
            row.profile,
            row.environments.join(", "),
            format_factor(row.factor),
            largest,
            kill
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    fn repo_policy() -> Policy {
        Policy::load(&repo_root().join("gauntlet.toml")).expect("repository gauntlet.toml parses")
    }

    /// Checks `text` against a policy that knows one profile, `default`, run on `local`.
    fn check_with_default_on_local(text: &str) -> Report {
        let mut policy = Policy::default();
        policy
            .nextest_profiles
            .insert("default".into(), vec!["local".into()]);
        check(&policy, text, Path::new("n.toml"), 1.0)
    }

    /// Asserts that some problem in `report` mentions `needle`, listing them all if none does.
    #[track_caller]
    fn assert_some_problem_mentions(report: &Report, needle: &str) {
        assert!(
            report.problems.iter().any(|p| p.contains(needle)),
            "{:?}",
            report.problems
        );
    }

    #[test]
    fn repository_files_agree() {
        let path = repo_root().join(".config/nextest.toml");
        let text = std::fs::read_to_string(&path).expect("repository nextest.toml");
        let report = check(&repo_policy(), &text, &path, 1.0);
        assert_eq!(report.problems, Vec::<String>::new());
        let names: Vec<&str> = report.profiles.iter().map(|p| p.profile.as_str()).collect();
        assert_eq!(names, ["ci", "default", "gpu", "wsl2"]);
    }

    #[test]
    fn too_tight_profile_fails_naming_profile_and_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nextest.toml");
        let text = r#"
            [profile.default]
            slow-timeout = { period = "60s", terminate-after = 2 }
            [profile.ci]
            slow-timeout = { period = "30s", terminate-after = 2 }
            [profile.wsl2]
            slow-timeout = { period = "90s", terminate-after = 4 }
            [profile.gpu]
        "#;
        std::fs::write(&path, text).expect("write");
        let report = check(&repo_policy(), text, &path, 1.0);
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        let problem = &report.problems[0];
        assert!(problem.contains("profile `ci`"), "{problem}");
        assert!(problem.contains("60s"), "{problem}");
        assert!(
            problem.contains("model_loading may run 60s × 2.0 (github-actions) = 120s"),
            "{problem}"
        );
        assert!(problem.contains("at least 5"), "{problem}");
    }

    #[test]
    fn multiplier_can_outgrow_the_kill_limit() {
        let path = repo_root().join(".config/nextest.toml");
        let text = std::fs::read_to_string(&path).expect("repository nextest.toml");
        let report = check(&repo_policy(), &text, &path, 10.0);
        assert_some_problem_mentions(&report, "profile `default`");
    }

    #[test]
    fn command_exits_zero_on_repository_files_and_invalid_on_tight_profile() {
        let args = |nextest: PathBuf| CheckConfigArgs {
            config: Some(repo_root().join("gauntlet.toml")),
            nextest: Some(nextest),
            multiplier: 1.0,
        };
        assert_eq!(
            execute(&args(repo_root().join(".config/nextest.toml"))),
            exit::OK
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let tight = dir.path().join("nextest.toml");
        let repo = std::fs::read_to_string(repo_root().join(".config/nextest.toml")).expect("read");
        let text = repo.replace("terminate-after = 3", "terminate-after = 1");
        assert_ne!(
            text, repo,
            "the ci profile's kill limit was found and tightened"
        );
        std::fs::write(&tight, text).expect("write");
        assert_eq!(execute(&args(tight)), exit::INVALID);
        assert_eq!(execute(&args(dir.path().join("missing.toml"))), exit::IO);
    }

    #[test]
    fn missing_terminate_after_and_unknown_group_are_reported() {
        let text = r#"
            [test-groups]
            gpu = { max-threads = 1 }
            [profile.default]
            slow-timeout = "60s"
            [[profile.default.overrides]]
            filter = "all()"
            test-group = "gpuu"
        "#;
        let report = check_with_default_on_local(text);
        assert_some_problem_mentions(&report, "never kills");
        assert_some_problem_mentions(&report, "`gpuu` is not defined");
    }

    #[test]
    fn profile_missing_from_policy_is_reported() {
        let text = "[profile.default]\nslow-timeout = { period = \"60s\", terminate-after = 9 }\n[profile.extra]\n";
        let report = check_with_default_on_local(text);
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        assert!(report.problems[0].contains("profile `extra` has no entry"));
    }

    #[test]
    fn bad_slow_timeout_form_says_what_is_accepted() {
        let text = "[profile.default]\nslow-timeout = 60\n";
        let report = check_with_default_on_local(text);
        assert_some_problem_mentions(&report, SLOW_TIMEOUT_FORM);
    }
}
