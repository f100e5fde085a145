//! Reads plain `cargo test` (libtest) output, for the fallback when cargo-nextest is
//! missing: no durations, retries or captured output, but every test's outcome.

use super::{TestRecord, TestStatus};

/// Parses interleaved cargo stderr/stdout lines into test results.
///
/// `Running unittests src/lib.rs (target/debug/deps/engine-1a2b3c)` starts a binary
/// (suite `engine`); `Doc-tests engine` starts the doc tests (suite `engine (doc)`);
/// `test name ... ok|FAILED|ignored[, reason]` is one test.
pub fn parse(output: &str) -> Vec<TestRecord> {
    let mut suite = String::from("unknown");
    let mut tests = Vec::new();
    for line in output.lines() {
        let line = line.trim_end();
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("Running ") {
            suite = binary_name(rest);
        } else if let Some(name) = trimmed.strip_prefix("Doc-tests ") {
            suite = format!("{} (doc)", name.trim());
        } else if let Some(rest) = trimmed.strip_prefix("test ")
            && let Some((name, outcome)) = rest.rsplit_once(" ... ")
        {
            let (status, reason) = match outcome {
                "ok" => (TestStatus::Passed, None),
                "FAILED" => (TestStatus::Failed, None),
                o if o.starts_with("ignored") => (
                    TestStatus::Skipped,
                    Some(o.strip_prefix("ignored, ").unwrap_or("ignored").to_owned()),
                ),
                _ => continue,
            };
            tests.push(TestRecord {
                suite: suite.clone(),
                name: name.trim().to_owned(),
                status,
                duration_ms: 0.0,
                attempts: u32::from(status != TestStatus::Skipped),
                skip_reason: reason,
                message: None,
            });
        }
    }
    tests
}

/// `unittests src/lib.rs (target/debug/deps/engine-1a2b3c)` → `engine`.
fn binary_name(running: &str) -> String {
    let path = running
        .rsplit_once('(')
        .map(|(_, p)| p.trim_end_matches(')'))
        .unwrap_or(running);
    let file = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let file = file.strip_suffix(".exe").unwrap_or(file);
    match file.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_owned(),
        _ => file.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "   Compiling sample v0.1.0
     Running unittests src/lib.rs (target/debug/deps/sample-0f1e2d3c4b5a6978)

running 3 tests
test tests::gpu_kernel_matches_reference ... ignored, needs a GPU
test tests::rejects_truncated_file ... FAILED
test tests::sums_small_range ... ok

   Doc-tests sample

running 1 test
test src/lib.rs - sum_to (line 3) ... ok
";

    #[test]
    fn outcomes_and_suites_are_read() {
        let t = parse(OUTPUT);
        let got: Vec<_> = t
            .iter()
            .map(|t| (t.suite.as_str(), t.name.as_str(), t.status))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "sample",
                    "tests::gpu_kernel_matches_reference",
                    TestStatus::Skipped
                ),
                (
                    "sample",
                    "tests::rejects_truncated_file",
                    TestStatus::Failed
                ),
                ("sample", "tests::sums_small_range", TestStatus::Passed),
                (
                    "sample (doc)",
                    "src/lib.rs - sum_to (line 3)",
                    TestStatus::Passed
                ),
            ]
        );
        assert_eq!(t[0].skip_reason.as_deref(), Some("needs a GPU"));
    }
}
