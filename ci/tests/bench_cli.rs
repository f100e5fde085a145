//! `gauntlet bench kernels` through the real binary: the documented JSON shape, rates
//! that agree with each other, and a clear error for a bad shape.

use std::process::Command;

fn gauntlet(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .args(args)
        .output()
        .expect("run gauntlet")
}

#[test]
fn bench_kernels_json_reports_every_format_with_consistent_rates() {
    let out = gauntlet(&[
        "bench",
        "kernels",
        "--json",
        "--threads",
        "1",
        "--shape",
        "64x512",
        "--min-time",
        "20ms",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let results = report["results"].as_array().expect("results array");
    let formats: Vec<&str> = results
        .iter()
        .map(|r| r["format"].as_str().expect("format"))
        .collect();
    assert_eq!(formats, ["TQ2_0", "I2_S", "TQ1_0"]);
    for r in results {
        let num = |key: &str| r[key].as_f64().unwrap_or_else(|| panic!("{key} in {r}"));
        assert_eq!(
            (num("m"), num("k"), num("n"), num("threads")),
            (64.0, 512.0, 1.0, 1.0)
        );
        for key in ["ns_per_op", "weight_gbps", "read_gbps", "hot_gbps"] {
            assert!(num(key) > 0.0, "{key} in {r}");
        }
        let ratio = num("weight_gbps") / num("read_gbps");
        assert!((num("roofline") - ratio).abs() < 1e-9, "{r}");
        // 64×512 is a few KiB: wherever the OS reports a cache, it is hot.
        let reported = gauntlet_kernels::roofline::last_level_cache_bytes().is_some();
        assert_eq!(r["hot_in_cache"], reported, "{r}");
        let bound = if !reported {
            "unknown"
        } else if num("hot_gbps") < num("read_gbps") {
            "compute"
        } else {
            "memory"
        };
        assert_eq!(r["bound"], bound, "{r}");
        assert_eq!(num("parallelism"), 1.0, "one thread takes every piece: {r}");
    }
}

#[test]
fn bench_kernels_rejects_a_bad_shape_with_a_usage_error() {
    let out = gauntlet(&["bench", "kernels", "--shape", "64by512"]);
    assert_eq!(out.status.code(), Some(2), "clap usage errors exit 2");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--shape"), "{err}");
}
