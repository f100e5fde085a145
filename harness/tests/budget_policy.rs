//! `gauntlet.toml` parsing (accepted and rejected inputs, each error naming file, key, value
//! and form), the multiplier variable, and budget derivations in fixed environments.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gauntlet_harness::budget::{Budget, Class, ConfigError, Policy, Request};
use gauntlet_harness::env::{CgroupLimits, Ci, Environment, Probe, Wsl};
use rstest::rstest;

fn parse(text: &str) -> Result<Policy, ConfigError> {
    Policy::parse(text, Path::new("/repo/gauntlet.toml"))
}

#[rstest]
#[case::empty_file_uses_defaults("", Class::TestDefault, 30_000)]
#[case::timeouts_override("[timeouts]\ntest_default = \"45s\"", Class::TestDefault, 45_000)]
#[case::compound_duration("[timeouts]\nmodel_loading = \"1m 30s\"", Class::ModelLoading, 90_000)]
#[case::milliseconds(
    "[timeouts]\ngpu_initialization = \"2500ms\"",
    Class::GpuInitialization,
    2_500
)]
#[case::unknown_top_level_tables_belong_to_others(
    "[performance]\nconcurrent_loads = 2\n[timeouts]\ntest_default = \"5s\"",
    Class::TestDefault,
    5_000
)]
#[case::unset_class_keeps_default("[timeouts]\ntest_default = \"5s\"", Class::ModelLoading, 60_000)]
fn accepted_timeouts(#[case] text: &str, #[case] class: Class, #[case] millis: u64) {
    let policy = parse(text).expect("accepted");
    assert_eq!(policy.base(class), Duration::from_millis(millis));
}

#[rstest]
#[case::integer_factor("[environments.wsl2]\nfactor = 3", "wsl2", 3.0)]
#[case::float_factor("[environments.github-actions]\nfactor = 2.5", "github-actions", 2.5)]
#[case::default_factor("", "instrumented", 10.0)]
fn accepted_factors(#[case] text: &str, #[case] env: &str, #[case] factor: f64) {
    assert_eq!(parse(text).expect("accepted").factor(env), factor);
}

#[rstest]
#[case::bare_integer_has_no_unit(
    "[timeouts]\ntest_default = 30",
    "timeouts.test_default",
    "positive duration"
)]
#[case::unparseable_duration(
    "[timeouts]\ntest_default = \"thirty seconds\"",
    "timeouts.test_default",
    "\"thirty seconds\""
)]
#[case::zero_duration(
    "[timeouts]\nmodel_loading = \"0s\"",
    "timeouts.model_loading",
    "positive duration"
)]
#[case::misspelled_class("[timeouts]\nmodel_load = \"60s\"", "model_load", "model_loading")]
#[case::unknown_environment("[environments.wsl3]\nfactor = 2.0", "wsl3", "wsl2")]
#[case::unknown_key_in_environment(
    "[environments.wsl2]\nfactr = 2.0",
    "factr",
    "expected one of: factor"
)]
#[case::negative_factor(
    "[environments.ci]\nfactor = -1.0",
    "environments.ci.factor",
    "greater than 0"
)]
#[case::zero_factor(
    "[environments.ci]\nfactor = 0",
    "environments.ci.factor",
    "greater than 0"
)]
#[case::string_factor(
    "[environments.ci]\nfactor = \"2\"",
    "environments.ci.factor",
    "finite number"
)]
#[case::timeouts_not_a_table("timeouts = \"30s\"", "timeouts", "a table")]
#[case::profile_not_a_list(
    "[nextest-profiles]\nci = \"github-actions\"",
    "nextest-profiles.ci",
    "list of environment names"
)]
#[case::profile_unknown_environment("[nextest-profiles]\nci = [\"gh\"]", "gh", "github-actions")]
#[case::not_toml("[timeouts\n", "gauntlet.toml is not valid TOML", "line 1")]
fn rejected_config(#[case] text: &str, #[case] names: &str, #[case] form: &str) {
    let error = parse(text).expect_err("rejected").to_string();
    assert!(
        error.contains("/repo/gauntlet.toml"),
        "names the file: {error}"
    );
    assert!(error.contains(names), "names the key: {error}");
    assert!(error.contains(form), "says the form: {error}");
}

#[test]
fn missing_named_config_is_a_read_error_naming_the_path() {
    let error = Policy::load(Path::new("/nonexistent/gauntlet.toml")).expect_err("missing");
    assert!(matches!(error, ConfigError::Read { .. }));
    assert!(error.to_string().contains("/nonexistent/gauntlet.toml"));
}

#[test]
fn find_prefers_gauntlet_config_variable_then_walks_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nested = dir.path().join("a/b/c");
    std::fs::create_dir_all(&nested).expect("mkdir");
    std::fs::write(dir.path().join("a/gauntlet.toml"), "").expect("write");
    let probe = Probe::fake(dir.path());
    assert_eq!(
        Policy::find(&probe, std::slice::from_ref(&nested)),
        Some(dir.path().join("a/gauntlet.toml"))
    );
    let named = probe.var_set("GAUNTLET_CONFIG", "/elsewhere/g.toml");
    assert_eq!(
        Policy::find(&named, &[nested]),
        Some(PathBuf::from("/elsewhere/g.toml"))
    );
}

#[test]
fn repository_config_parses_and_names_every_profile() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gauntlet.toml");
    let policy = Policy::load(&path).expect("the repository's gauntlet.toml is valid");
    for profile in ["default", "ci", "wsl2", "gpu"] {
        assert!(
            policy.nextest_profiles.contains_key(profile),
            "missing profile {profile}"
        );
    }
}

fn env_with(ci: Option<Ci>, wsl: Option<Wsl>) -> Environment {
    Environment {
        ci,
        wsl,
        host_cpus: 4,
        ..Environment::default()
    }
}

fn budget(
    env: &Environment,
    vars: &[(&str, &str)],
    request: Request,
) -> Result<Budget, ConfigError> {
    let root = tempfile::tempdir().expect("tempdir");
    let probe = vars
        .iter()
        .fold(Probe::fake(root.path()), |p, (k, v)| p.var_set(k, v));
    Budget::resolve(&request, &Policy::default(), env, &probe)
}

#[rstest]
#[case::local(None, None, &[], "30s × 1.0 (local) = 30s")]
#[case::github_hosted_with_multiplier(
    Some(Ci::GithubActions { self_hosted: false }), None,
    &[("GAUNTLET_TEST_TIMEOUT_MULTIPLIER", "3")],
    "30s × 2.0 (github-actions, hosted) × 3.0 (GAUNTLET_TEST_TIMEOUT_MULTIPLIER) = 180s")]
#[case::self_hosted(Some(Ci::GithubActions { self_hosted: true }), None, &[], "30s × 1.0 (github-actions, self-hosted) = 30s")]
#[case::generic_ci(Some(Ci::Generic), None, &[], "30s × 1.5 (ci, CI set) = 45s")]
#[case::wsl2(None, Some(Wsl::V2), &[], "30s × 1.5 (wsl2) = 45s")]
#[case::fractional_multiplier(None, None, &[("GAUNTLET_TEST_TIMEOUT_MULTIPLIER", "0.5")], "30s × 1.0 (local) × 0.5 (GAUNTLET_TEST_TIMEOUT_MULTIPLIER) = 15s")]
fn derivations(
    #[case] ci: Option<Ci>,
    #[case] wsl: Option<Wsl>,
    #[case] vars: &[(&str, &str)],
    #[case] expected: &str,
) {
    let b = budget(&env_with(ci, wsl), vars, Request::class(Class::TestDefault)).expect("budget");
    assert_eq!(b.to_string(), expected);
}

#[rstest]
#[case::word("three")]
#[case::zero("0")]
#[case::negative("-2")]
#[case::infinite("inf")]
#[case::empty("")]
fn bad_multiplier_is_an_error_naming_the_variable(#[case] value: &str) {
    let env = env_with(None, None);
    let vars = [("GAUNTLET_TEST_TIMEOUT_MULTIPLIER", value)];
    let error = budget(&env, &vars, Request::class(Class::TestDefault))
        .expect_err("rejected")
        .to_string();
    assert!(
        error.contains("environment variable GAUNTLET_TEST_TIMEOUT_MULTIPLIER"),
        "{error}"
    );
    assert!(error.contains("greater than 0"), "{error}");
}

#[test]
fn constrained_cpu_scales_by_quota() {
    let env = Environment {
        host_cpus: 8,
        cgroup: CgroupLimits {
            cpu_quota: Some(0.5),
            ..CgroupLimits::default()
        },
        ..Environment::default()
    };
    let b = budget(&env, &[], Request::literal(Duration::from_secs(10))).expect("budget");
    assert_eq!(
        b.to_string(),
        "10s × 4.0 (constrained, 0.5 usable cores) = 40s"
    );
}

#[test]
fn memory_limit_below_twice_the_model_slows_loading() {
    let env = Environment {
        host_cpus: 4,
        cgroup: CgroupLimits {
            memory_limit: Some(1024 * 1024 * 1024),
            ..CgroupLimits::default()
        },
        ..Environment::default()
    };
    let request = Request::class(Class::ModelLoading).model_size(800 * 1024 * 1024);
    let b = budget(&env, &[], request).expect("budget");
    assert_eq!(
        b.to_string(),
        "60s × 1.5 (constrained, memory limit 1024 MiB < 2 × model) = 90s"
    );
}

#[test]
fn wsl2_path_on_windows_drive_doubles_again() {
    let root = tempfile::tempdir().expect("tempdir");
    let info = root.path().join("proc/self");
    std::fs::create_dir_all(&info).expect("mkdir");
    std::fs::write(
        info.join("mountinfo"),
        "1 0 0:1 / / rw - ext4 /dev/sda rw\n2 1 0:2 / /mnt/c rw - 9p drvfs rw\n",
    )
    .expect("write");
    let env = env_with(None, Some(Wsl::V2));
    let request = Request::class(Class::ModelLoading).on_path("/mnt/c/models/m.gguf");
    let b = Budget::resolve(
        &request,
        &Policy::default(),
        &env,
        &Probe::fake(root.path()),
    )
    .expect("budget");
    assert_eq!(
        b.to_string(),
        "60s × 1.5 (wsl2) × 2.0 (wsl2-drvfs, /mnt/c on 9p) = 180s"
    );
}

#[test]
fn instrumented_runs_get_ten_times_longer() {
    let env = Environment {
        host_cpus: 4,
        instrumentation: vec![gauntlet_harness::env::Instrumentation::Valgrind],
        ..Environment::default()
    };
    let b = budget(&env, &[], Request::literal(Duration::from_millis(200))).expect("budget");
    assert_eq!(b.to_string(), "200ms × 10.0 (instrumented, valgrind) = 2s");
}
