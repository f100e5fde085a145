//! `gauntlet inspect` as a whole process: every malformed corpus file exits 2 with a
//! one-line error and a hint (never a signal), valid fixtures exit 0 with the
//! documented JSON keys, and hostile counts do not make the process grow.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn gauntlet(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .args(args)
        .output()
        .expect("the gauntlet binary runs")
}

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/malformed");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "gguf"))
        .collect();
    files.sort();
    files
}

/// Peak RSS of any waited-for child of this process so far, in KiB (Linux units).
fn children_max_rss_kib() -> libc::c_long {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_CHILDREN is always valid.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage failed");
    // SAFETY: rc == 0 means the kernel initialised the struct.
    unsafe { usage.assume_init() }.ru_maxrss
}

#[test]
fn every_malformed_file_exits_2_with_one_error_line_and_a_hint() {
    let files = corpus();
    assert!(files.len() >= 30, "only {} corpus files", files.len());
    for file in files {
        let out = gauntlet(&["inspect".as_ref(), file.as_os_str()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", file.display());
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{}: {stderr}", file.display());
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(" at offset "),
            "{stderr}"
        );
        assert!(lines[1].starts_with("help: "), "{stderr}");
        assert!(out.stdout.is_empty(), "{}", file.display());
    }
    let peak_mib = children_max_rss_kib() / 1024;
    assert!(peak_mib < 64, "a child peaked at {peak_mib} MiB");
}

#[test]
fn a_fixture_round_trips_through_fixture_and_inspect_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tiny.gguf");
    let out = gauntlet(&[
        "fixture".as_ref(),
        "--preset".as_ref(),
        "tiny".as_ref(),
        "--seed".as_ref(),
        "4".as_ref(),
        "-o".as_ref(),
        path.as_os_str(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = gauntlet(&["inspect".as_ref(), path.as_os_str(), "--json".as_ref()]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    for key in [
        "version",
        "alignment",
        "tensor_data_offset",
        "metadata",
        "tensors",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    let tokens = &json["metadata"]["tokenizer.ggml.tokens"];
    assert_eq!(tokens["type"], "array");
    assert_eq!(tokens["element_type"], "STRING");
    assert_eq!(tokens["len"], 300);
    let q = json["tensors"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "blk.0.attn_q.weight"))
        .expect("attn_q listed");
    assert_eq!(
        (q["type"].as_str(), q["type_id"].as_u64()),
        (Some("TQ2_0"), Some(35))
    );
    assert_eq!(q["dims"], serde_json::json!([256, 256]));
}

#[test]
fn values_of_an_f16_tensor_decode_and_a_missing_tensor_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tiny.gguf");
    let fixture = ["fixture", "--preset", "tiny", "-o"].map(std::ffi::OsStr::new);
    let mut args: Vec<&std::ffi::OsStr> = fixture.to_vec();
    args.push(path.as_os_str());
    assert_eq!(gauntlet(&args).status.code(), Some(0));
    let inspect = |tensor: &str| {
        gauntlet(&[
            "inspect".as_ref(),
            path.as_os_str(),
            "--tensor".as_ref(),
            tensor.as_ref(),
            "--values".as_ref(),
            "3".as_ref(),
            "--json".as_ref(),
        ])
    };
    let out = inspect("output_norm.weight");
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let values = json["values"].as_array().expect("values");
    assert_eq!(values.len(), 3);
    assert!(
        values
            .iter()
            .all(|v| (v.as_f64().unwrap_or(0.0) - 1.0).abs() < 0.02)
    );
    let out = inspect("no.such.tensor");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_missing_file_is_an_io_error_exit_1() {
    let out = gauntlet(&["inspect".as_ref(), "/nonexistent/model.gguf".as_ref()]);
    assert_eq!(out.status.code(), Some(1));
}
