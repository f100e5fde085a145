//! `gauntlet run` on a small real crate: three hash partitions merged into one run
//! equal one unpartitioned run, and without nextest it falls back to `cargo test`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TESTS: usize = 9;

fn write_crate(dir: &Path) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"shardme\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace]\n",
    )
    .unwrap();
    let mut lib = String::from("#[cfg(test)]\nmod tests {\n");
    for i in 1..=TESTS {
        lib.push_str(&format!(
            "    #[test]\n    fn case_{i:02}() {{ assert_eq!({i} + 1, {}); }}\n",
            i + 1
        ));
    }
    lib.push_str("}\n");
    std::fs::write(dir.join("src/lib.rs"), lib).unwrap();
}

fn gauntlet(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gauntlet"));
    cmd.args(args)
        .current_dir(dir)
        // Elsewhere than the workspace's target/: nextest's JUnit still lands under
        // <workspace>/target/nextest, and gauntlet must find it there.
        .env("CARGO_TARGET_DIR", dir.with_file_name("cargo-target"))
        .env_remove("GITHUB_RUN_ID")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GAUNTLET_DB");
    // The outer nextest's variables must not steer the inner one.
    for (k, _) in std::env::vars() {
        if k.starts_with("NEXTEST") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(envs.iter().copied());
    cmd.output().expect("run gauntlet")
}

fn check(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "status {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn nextest_installed() -> bool {
    Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn junit_names(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.split("<testcase name=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap_or_default().to_owned())
        .collect()
}

fn summary(dir: &Path, db: &Path) -> serde_json::Value {
    let db = db.to_str().unwrap();
    let out = check(&gauntlet(
        dir,
        &["dashboard", "--json", "--db", db, "--config", "none.toml"],
        &[],
    ));
    serde_json::from_str(&out).unwrap()
}

#[test]
fn three_partitions_merge_into_the_same_run_as_one_unpartitioned_run() {
    if !nextest_installed() {
        if std::env::var("GAUNTLET_REQUIRE_NEXTEST").as_deref() == Ok("1") {
            panic!("GAUNTLET_REQUIRE_NEXTEST=1 but cargo-nextest is not installed");
        }
        println!("SKIP cargo-nextest is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shardme");
    write_crate(&dir);
    let junit: PathBuf = dir.join("target/nextest/default/gauntlet-junit.xml");
    let sharded = tmp.path().join("sharded.sqlite");
    let mut shards: Vec<Vec<String>> = Vec::new();
    for k in 1..=3 {
        let part = format!("{k}/3");
        check(&gauntlet(
            &dir,
            &[
                "run",
                "--profile",
                "default",
                "--partition",
                &part,
                "--run-id",
                "sharded",
                "--db",
                sharded.to_str().unwrap(),
                "--config",
                "none.toml",
            ],
            &[],
        ));
        shards.push(junit_names(&junit));
    }
    let single = tmp.path().join("single.sqlite");
    let stdout = check(&gauntlet(
        &dir,
        &[
            "run",
            "--profile",
            "default",
            "--run-id",
            "single",
            "--db",
            single.to_str().unwrap(),
            "--config",
            "none.toml",
        ],
        &[],
    ));
    assert!(
        stdout.contains(&format!("{TESTS} passed, 0 failed")),
        "{stdout}"
    );
    let whole: BTreeSet<String> = junit_names(&junit).into_iter().collect();
    assert_eq!(whole.len(), TESTS);

    let total: usize = shards.iter().map(Vec::len).sum();
    let union: BTreeSet<String> = shards.iter().flatten().cloned().collect();
    assert_eq!(
        union, whole,
        "the shards together must run exactly the unpartitioned list"
    );
    assert_eq!(total, TESTS, "no test may run in two shards: {shards:?}");

    let (a, b) = (summary(&dir, &sharded), summary(&dir, &single));
    assert_eq!(a["runs"], 1, "three shards with one run id must be one run");
    for key in ["passed", "failed", "flaky", "skipped"] {
        assert_eq!(a["latest"][key], b["latest"][key], "{key}");
    }
}

#[test]
fn without_nextest_it_falls_back_to_cargo_test_and_says_so() {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .unwrap();
    let bin = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim()).join("bin");
    if !bin.join("cargo").is_file() {
        println!("SKIP no cargo in the rustc sysroot to run without cargo-nextest on PATH");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shardme");
    write_crate(&dir);
    // A PATH and CARGO_HOME without cargo-nextest: only the toolchain's own cargo.
    let empty_home = tmp.path().join("cargo-home");
    std::fs::create_dir_all(&empty_home).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let db = tmp.path().join("h.sqlite");
    let out = gauntlet(
        &dir,
        &[
            "run",
            "--profile",
            "default",
            "--db",
            db.to_str().unwrap(),
            "--config",
            "none.toml",
        ],
        &[
            ("PATH", &path),
            ("CARGO_HOME", empty_home.to_str().unwrap()),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = check(&out);
    assert!(stderr.contains("falling back to `cargo test`"), "{stderr}");
    assert!(
        stderr.contains("cargo install --locked cargo-nextest"),
        "{stderr}"
    );
    assert!(
        stdout.contains(&format!("{TESTS} passed, 0 failed")),
        "{stdout}"
    );
}
