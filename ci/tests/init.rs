//! `gauntlet init` writes profiles, policy and a workflow that pass `check-config` and
//! actionlint, and never overwrites without `--force`.

mod actionlint_support;

use actionlint_support::actionlint_or_skip;

use std::path::Path;
use std::process::{Command, Output};

fn gauntlet(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run gauntlet")
}

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[package]\nname = \"other\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
    )
    .unwrap();
    dir
}

#[test]
fn init_writes_files_that_pass_check_config() {
    let dir = project();
    let out = gauntlet(&["init"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for rel in [
        ".config/nextest.toml",
        "gauntlet.toml",
        ".github/workflows/ci.yml",
    ] {
        assert!(dir.path().join(rel).is_file(), "{rel} not written");
    }
    let check = gauntlet(&["check-config"], dir.path());
    assert!(
        check.status.success(),
        "check-config rejected what init wrote:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn init_refuses_to_overwrite_and_writes_nothing_without_force() {
    let dir = project();
    let mine = dir.path().join("gauntlet.toml");
    std::fs::write(&mine, "# mine\n").unwrap();
    let out = gauntlet(&["init"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "# mine\n");
    assert!(
        !dir.path().join(".config/nextest.toml").exists(),
        "a refused init must write nothing"
    );

    let forced = gauntlet(&["init", "--force"], dir.path());
    assert!(forced.status.success());
    assert_ne!(std::fs::read_to_string(&mine).unwrap(), "# mine\n");
}

#[test]
fn init_outside_a_rust_project_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = gauntlet(&["init", dir.path().to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Cargo.toml"));
}

#[test]
fn init_workflow_passes_actionlint() {
    let Some(bin) = actionlint_or_skip() else {
        return;
    };
    let dir = project();
    assert!(gauntlet(&["init"], dir.path()).status.success());
    let out = Command::new(bin)
        .arg("-no-color")
        .arg(".github/workflows/ci.yml")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
