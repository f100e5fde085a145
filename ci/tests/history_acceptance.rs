//! Acceptance for history and analysis: the real `gauntlet` binary is fed real
//! nextest JUnit (one flaky test, one failing test) and real criterion output (one
//! benchmark 30 % slower, one unchanged), and must name exactly those.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

fn gauntlet(args: &[&str], db: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .args(args)
        .arg("--db")
        .arg(db)
        .env_remove("GITHUB_RUN_ID")
        .env("GAUNTLET_ENV_LABEL", "acceptance")
        .output()
        .expect("run gauntlet")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Records the before/after criterion runs and the JUnit into a fresh database.
fn recorded(dir: &Path) -> PathBuf {
    let db = dir.join("history.sqlite");
    let before = data("criterion/before");
    let after = data("criterion/after");
    let junit = data("nextest/flaky-and-failing.xml");
    ok(&gauntlet(
        &[
            "record",
            "--criterion",
            before.to_str().unwrap(),
            "--run-id",
            "before",
            "--commit",
            "c1",
        ],
        &db,
    ));
    ok(&gauntlet(
        &[
            "record",
            "--junit",
            junit.to_str().unwrap(),
            "--criterion",
            after.to_str().unwrap(),
            "--run-id",
            "after",
            "--commit",
            "c2",
        ],
        &db,
    ));
    db
}

fn names(v: &Value, key: &str, field: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is not an array in {v}"))
        .iter()
        .map(|x| x[field].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn dashboard_json_names_exactly_the_flaky_test_the_failure_and_the_slower_benchmark() {
    let dir = tempfile::tempdir().unwrap();
    let db = recorded(dir.path());
    let config = dir.path().join("no-gauntlet.toml");
    let json = ok(&gauntlet(
        &["dashboard", "--json", "--config", config.to_str().unwrap()],
        &db,
    ));
    let v: Value = serde_json::from_str(&json).expect("dashboard --json prints JSON");
    assert_eq!(
        names(&v, "flaky", "test"),
        ["sample tests::parses_header_flaky"]
    );
    assert_eq!(
        names(&v, "failures", "test"),
        ["sample tests::rejects_truncated_file"]
    );
    assert_eq!(names(&v, "regressions", "name"), ["sums/sum_slowing"]);
    assert!(
        !json.contains("\"sums/sum_stable\""),
        "the unchanged benchmark must not be reported:\n{json}"
    );
    let slower = &v["regressions"][0];
    let change = slower["change"].as_f64().unwrap();
    assert!(
        (0.2..0.45).contains(&change),
        "sum_slowing changed by {change}"
    );
    assert_eq!(
        v["latest"]["skipped"][0]["reason"],
        "cgroup v2 is not writable here"
    );
}

#[test]
fn shards_of_one_run_merge_into_the_same_results_as_one_unsharded_run() {
    let dir = tempfile::tempdir().unwrap();
    let sharded = dir.path().join("sharded.sqlite");
    for shard in ["nextest/shard-1-of-2.xml", "nextest/shard-2-of-2.xml"] {
        let path = data(shard);
        ok(&gauntlet(
            &[
                "record",
                "--junit",
                path.to_str().unwrap(),
                "--run-id",
                "ci-7",
            ],
            &sharded,
        ));
    }
    let single = dir.path().join("single.sqlite");
    let whole = data("nextest/flaky-and-failing.xml");
    ok(&gauntlet(
        &[
            "record",
            "--junit",
            whole.to_str().unwrap(),
            "--run-id",
            "ci-7",
        ],
        &single,
    ));

    let config = dir.path().join("none.toml");
    let summary = |db: &Path| {
        let v: Value = serde_json::from_str(&ok(&gauntlet(
            &["dashboard", "--json", "--config", config.to_str().unwrap()],
            db,
        )))
        .unwrap();
        (
            v["runs"].clone(),
            [
                &v["latest"]["passed"],
                &v["latest"]["failed"],
                &v["latest"]["flaky"],
            ]
            .map(|x| x.clone()),
            names(&v, "flaky", "test"),
            names(&v, "failures", "test"),
            v["latest"]["skipped"].clone(),
        )
    };
    assert_eq!(summary(&sharded), summary(&single));
}

#[test]
fn bmf_export_has_the_bencher_metric_format_shape() {
    let dir = tempfile::tempdir().unwrap();
    let db = recorded(dir.path());
    let v: Value =
        serde_json::from_str(&ok(&gauntlet(&["export", "--format", "bmf"], &db))).unwrap();
    // BMF: an object of benchmark name -> object of measure slug -> metric, where a
    // metric is an object with a numeric `value` and optional numeric
    // `lower_value`/`upper_value` and nothing else.
    let benches = v.as_object().expect("BMF root is an object");
    let mut names: Vec<&String> = benches.keys().collect();
    names.sort();
    assert_eq!(names, ["sums/sum_slowing", "sums/sum_stable"]);
    for (name, measures) in benches {
        let measures = measures
            .as_object()
            .expect("benchmark maps to an object of measures");
        assert!(!measures.is_empty());
        for (slug, metric) in measures {
            assert_eq!(slug, "latency");
            let metric = metric.as_object().expect("measure maps to a metric object");
            for key in metric.keys() {
                assert!(
                    ["value", "lower_value", "upper_value"].contains(&key.as_str()),
                    "{name}: {key}"
                );
            }
            let n = |k: &str| {
                metric[k]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{name}.{k} is not a number"))
            };
            assert!(n("lower_value") <= n("value") && n("value") <= n("upper_value"));
        }
    }
    // The exported numbers are the latest run's (the 30 % slower one).
    let slowing = v["sums/sum_slowing"]["latency"]["value"].as_f64().unwrap();
    let stable = v["sums/sum_stable"]["latency"]["value"].as_f64().unwrap();
    assert!(slowing > stable * 1.2, "{slowing} vs {stable}");
}

#[test]
fn gab_export_is_a_custom_smaller_is_better_array() {
    let dir = tempfile::tempdir().unwrap();
    let db = recorded(dir.path());
    let v: Value =
        serde_json::from_str(&ok(&gauntlet(&["export", "--format", "gab"], &db))).unwrap();
    let items = v.as_array().expect("an array");
    assert_eq!(items.len(), 2);
    for item in items {
        assert!(item["name"].is_string() && item["unit"] == "ns" && item["value"].is_number());
    }
}

#[test]
fn malformed_junit_is_refused_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(data("nextest/flaky-and-failing.xml")).unwrap();
    // Cut the real file inside an element on its fifth line.
    let cut: String = text.lines().take(5).collect::<Vec<_>>().join("\n") + "\n<testcase name=\"x";
    let bad = dir.path().join("junit.xml");
    std::fs::write(&bad, cut).unwrap();
    let out = gauntlet(
        &["record", "--junit", bad.to_str().unwrap()],
        &dir.path().join("h.sqlite"),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("junit.xml:6:"), "{err}");
}

#[test]
fn human_summary_lists_failure_flaky_skip_and_regression() {
    let dir = tempfile::tempdir().unwrap();
    let db = recorded(dir.path());
    let out_dir = dir.path().join("site");
    let config = dir.path().join("none.toml");
    let text = ok(&gauntlet(
        &[
            "dashboard",
            "--out",
            out_dir.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        &db,
    ));
    assert!(out_dir.join("index.html").is_file());
    insta::with_settings!({filters => vec![
        (r"\(\w+, \d+ cores\)", "(ARCH, N cores)"),
        (r"dashboard: .*", "dashboard: DIR/index.html"),
    ]}, {
        insta::assert_snapshot!(text);
    });
}

#[test]
fn markdown_step_summary_lists_the_same_findings() {
    let dir = tempfile::tempdir().unwrap();
    let db = recorded(dir.path());
    let config = dir.path().join("none.toml");
    let md = ok(&gauntlet(
        &[
            "dashboard",
            "--markdown",
            "--config",
            config.to_str().unwrap(),
        ],
        &db,
    ));
    insta::with_settings!({filters => vec![(r"\(\w+, \d+ cores\)", "(ARCH, N cores)")]}, {
        insta::assert_snapshot!(md);
    });
}
