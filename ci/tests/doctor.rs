//! `gauntlet doctor` reports every section, recommends a profile, and turns a missing
//! GPU into a blocking problem when the runner says one is required.

use std::process::Command;

use serde_json::Value;

fn doctor(envs: &[(&str, &str)]) -> (Option<i32>, Value) {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .args(["doctor", "--json"])
        .current_dir(repo)
        .env_remove("GAUNTLET_REQUIRE_GPU")
        .envs(envs.iter().copied())
        .output()
        .expect("run gauntlet doctor");
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code(), json)
}

#[test]
fn doctor_json_has_every_section_and_a_profile() {
    let (code, v) = doctor(&[]);
    for key in [
        "environment",
        "resources",
        "gpu",
        "oom",
        "toolchain",
        "profile",
        "budgets",
        "warnings",
        "problems",
    ] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(code, Some(if problems.is_empty() { 0 } else { 1 }), "{v}");
    let profile = v["profile"]["profile"].as_str().unwrap();
    assert!(
        ["default", "ci", "wsl2", "gpu"].contains(&profile),
        "{profile}"
    );
    // The repository's gauntlet.toml is found from the checkout, so every class has a budget.
    let classes: Vec<&str> = v["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["class"].as_str().unwrap())
        .collect();
    assert_eq!(
        classes,
        ["test_default", "model_loading", "gpu_initialization"]
    );
    assert!(v["resources"]["ram_total"].as_u64().unwrap_or(0) > 0);
}

#[test]
fn required_gpu_that_is_missing_is_a_blocking_problem() {
    let (_, plain) = doctor(&[]);
    if !plain["gpu"]["detected"].is_null() {
        println!("SKIP this machine has a GPU, so a missing one cannot be shown");
        return;
    }
    let (code, v) = doctor(&[("GAUNTLET_REQUIRE_GPU", "1")]);
    assert_eq!(code, Some(1));
    let problems = v["problems"].to_string();
    assert!(problems.contains("GAUNTLET_REQUIRE_GPU=1"), "{problems}");
}
