//! Loader configuration: precedence and rejected values, one named case each.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use gauntlet_engine::config::{CliOverrides, ConfigError, LoadConfig, Origin};
use rstest::rstest;

const PATH: &str = "/repo/gauntlet.toml";

fn resolve(file: &str, env: &[(&str, &str)], cli: CliOverrides) -> Result<LoadConfig, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    LoadConfig::resolve(Some((Path::new(PATH), file)), |k| env.get(k).cloned(), &cli)
}

#[test]
fn defaults_apply_without_any_source() {
    let cfg = LoadConfig::resolve(None, |_| None, &CliOverrides::default()).expect("defaults");
    assert_eq!(cfg.model_loading_timeout.value, Duration::from_secs(60));
    assert_eq!(cfg.chunk_size.value, 64 << 20);
    assert_eq!(cfg.concurrent_loads.value, 2);
    assert!(cfg.progress_reporting.value);
    assert_eq!(cfg.progress_interval.value, Duration::from_secs(1));
    assert_eq!(cfg.chunk_size.origin, Origin::Default);
}

#[test]
fn file_values_are_read_and_other_tables_ignored() {
    let text = r#"
[timeouts]
model_loading = "90s"
unit_test = "5s"

[environments.wsl2]
factor = 1.5

[performance]
chunk_size = "64MB"
concurrent_loads = 3
progress_reporting = false
progress_interval = "250ms"
"#;
    let cfg = resolve(text, &[], CliOverrides::default()).expect("valid file");
    assert_eq!(cfg.model_loading_timeout.value, Duration::from_secs(90));
    assert_eq!(cfg.chunk_size.value, 64_000_000);
    assert_eq!(cfg.concurrent_loads.value, 3);
    assert!(!cfg.progress_reporting.value);
    assert_eq!(cfg.progress_interval.value, Duration::from_millis(250));
    assert_eq!(
        cfg.chunk_size.origin,
        Origin::File {
            path: PATH.into(),
            key: "performance.chunk_size".into()
        }
    );
}

#[rstest]
#[case::file_only("[timeouts]\nmodel_loading = \"10s\"", &[], None, 10, "timeouts.model_loading in /repo/gauntlet.toml")]
#[case::env_beats_file("[timeouts]\nmodel_loading = \"10s\"", &[("GAUNTLET_MODEL_LOAD_TIMEOUT", "20s")], None, 20, "environment variable GAUNTLET_MODEL_LOAD_TIMEOUT")]
#[case::cli_beats_env_and_file("[timeouts]\nmodel_loading = \"10s\"", &[("GAUNTLET_MODEL_LOAD_TIMEOUT", "20s")], Some("30s"), 30, "command-line flag --timeout")]
#[case::empty_env_counts_as_unset("[timeouts]\nmodel_loading = \"10s\"", &[("GAUNTLET_MODEL_LOAD_TIMEOUT", "")], None, 10, "timeouts.model_loading in /repo/gauntlet.toml")]
#[case::default_when_nothing_set("", &[], None, 60, "the default")]
fn timeout_precedence_is_cli_env_file_default(
    #[case] file: &str,
    #[case] env: &[(&str, &str)],
    #[case] cli: Option<&str>,
    #[case] secs: u64,
    #[case] origin: &str,
) {
    let cli = CliOverrides {
        timeout: cli.map(str::to_string),
        ..CliOverrides::default()
    };
    let cfg = resolve(file, env, cli).expect("valid sources");
    assert_eq!(cfg.model_loading_timeout.value, Duration::from_secs(secs));
    assert_eq!(cfg.model_loading_timeout.origin.to_string(), origin);
}

#[rstest]
#[case::env_bool_words("GAUNTLET_PROGRESS_REPORTING", "off", false)]
#[case::env_bool_digit("GAUNTLET_PROGRESS_REPORTING", "1", true)]
fn env_progress_reporting_accepts_common_spellings(
    #[case] var: &str,
    #[case] val: &str,
    #[case] want: bool,
) {
    let cfg = resolve("", &[(var, val)], CliOverrides::default()).expect("valid env");
    assert_eq!(cfg.progress_reporting.value, want);
}

#[rstest]
#[case::bare_number_size_has_no_unit("[performance]\nchunk_size = \"65536\"", &[], "invalid value \"65536\" for performance.chunk_size in /repo/gauntlet.toml: expected a size such as \"64MB\" or \"64MiB\", from 4 KiB to 1 GiB")]
#[case::size_too_small("[performance]\nchunk_size = \"1KB\"", &[], "invalid value \"1KB\" for performance.chunk_size in /repo/gauntlet.toml: expected a size such as \"64MB\" or \"64MiB\", from 4 KiB to 1 GiB")]
#[case::size_too_large("[performance]\nchunk_size = \"2GiB\"", &[], "invalid value \"2GiB\" for performance.chunk_size in /repo/gauntlet.toml: expected a size such as \"64MB\" or \"64MiB\", from 4 KiB to 1 GiB")]
#[case::size_as_integer("[performance]\nchunk_size = 64", &[], "invalid value \"64\" for performance.chunk_size in /repo/gauntlet.toml: expected a size such as \"64MB\" or \"64MiB\", from 4 KiB to 1 GiB")]
#[case::zero_concurrency("[performance]\nconcurrent_loads = 0", &[], "invalid value \"0\" for performance.concurrent_loads in /repo/gauntlet.toml: expected a whole number from 1 to 64")]
#[case::negative_concurrency("[performance]\nconcurrent_loads = -2", &[], "invalid value \"-2\" for performance.concurrent_loads in /repo/gauntlet.toml: expected a whole number from 1 to 64")]
#[case::string_concurrency("[performance]\nconcurrent_loads = \"2\"", &[], "invalid value \"2\" for performance.concurrent_loads in /repo/gauntlet.toml: expected a whole number from 1 to 64")]
#[case::string_bool_in_file("[performance]\nprogress_reporting = \"yes\"", &[], "invalid value \"yes\" for performance.progress_reporting in /repo/gauntlet.toml: expected true or false")]
#[case::zero_interval("[performance]\nprogress_interval = \"0s\"", &[], "invalid value \"0s\" for performance.progress_interval in /repo/gauntlet.toml: expected a duration such as \"60s\", \"1m30s\" or \"250ms\", greater than zero")]
#[case::unitless_timeout("[timeouts]\nmodel_loading = 60", &[], "invalid value \"60\" for timeouts.model_loading in /repo/gauntlet.toml: expected a duration such as \"60s\", \"1m30s\" or \"250ms\", greater than zero")]
#[case::typo_in_performance_key("[performance]\nchunksize = \"64MB\"", &[], "unknown key \"chunksize\" in [performance] of /repo/gauntlet.toml: expected one of chunk_size, concurrent_loads, progress_reporting, progress_interval")]
#[case::performance_not_a_table("performance = 3", &[], "/repo/gauntlet.toml is not valid: `performance` must be a table ([performance]); help: check the TOML syntax near the reported line")]
#[case::env_timeout_garbage("", &[("GAUNTLET_MODEL_LOAD_TIMEOUT", "soon")], "invalid value \"soon\" for environment variable GAUNTLET_MODEL_LOAD_TIMEOUT: expected a duration such as \"60s\", \"1m30s\" or \"250ms\", greater than zero")]
#[case::env_interval_unitless("", &[("GAUNTLET_PROGRESS_INTERVAL", "5")], "invalid value \"5\" for environment variable GAUNTLET_PROGRESS_INTERVAL: expected a duration such as \"60s\", \"1m30s\" or \"250ms\", greater than zero")]
#[case::env_bool_garbage("", &[("GAUNTLET_PROGRESS_REPORTING", "maybe")], "invalid value \"maybe\" for environment variable GAUNTLET_PROGRESS_REPORTING: expected one of true, false, 1, 0, yes, no, on, off")]
fn invalid_values_name_source_key_value_and_form(
    #[case] file: &str,
    #[case] env: &[(&str, &str)],
    #[case] message: &str,
) {
    let err = resolve(file, env, CliOverrides::default()).expect_err("must be rejected");
    assert_eq!(err.to_string(), message);
}

#[rstest]
#[case::cli_timeout_garbage(CliOverrides { timeout: Some("fast".into()), ..CliOverrides::default() }, "invalid value \"fast\" for command-line flag --timeout: expected a duration such as \"60s\", \"1m30s\" or \"250ms\", greater than zero")]
#[case::cli_chunk_garbage(CliOverrides { chunk_size: Some("big".into()), ..CliOverrides::default() }, "invalid value \"big\" for command-line flag --chunk-size: expected a size such as \"64MB\" or \"64MiB\", from 4 KiB to 1 GiB")]
fn invalid_cli_values_name_the_flag(#[case] cli: CliOverrides, #[case] message: &str) {
    let err = resolve("", &[], cli).expect_err("must be rejected");
    assert_eq!(err.to_string(), message);
}

#[test]
fn broken_toml_is_a_syntax_error_naming_the_file() {
    let err =
        resolve("[performance\nchunk_size=", &[], CliOverrides::default()).expect_err("broken");
    assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("/repo/gauntlet.toml is not valid"),
        "{err}"
    );
}

#[test]
fn the_repository_gauntlet_toml_is_valid_for_the_loader() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gauntlet.toml");
    let text = std::fs::read_to_string(&path).expect("gauntlet.toml at the workspace root");
    let cfg = LoadConfig::resolve(Some((&path, &text)), |_| None, &CliOverrides::default())
        .expect("the shipped config parses");
    assert_eq!(cfg.model_loading_timeout.value, Duration::from_secs(60));
    assert!(
        matches!(cfg.chunk_size.origin, Origin::File { .. }),
        "[performance] is present"
    );
}
