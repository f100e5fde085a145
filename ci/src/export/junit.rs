//! One JUnit document for a whole run, however many shards it was recorded from,
//! for tools (test reporters, CI annotations) that expect a single file.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::dashboard::escape;
use crate::history::{StoredRun, TestRecord, TestStatus};

/// The merged JUnit XML of `run`.
pub fn document(run: &StoredRun) -> String {
    let mut suites: BTreeMap<&str, Vec<&TestRecord>> = BTreeMap::new();
    for t in &run.tests {
        suites.entry(t.suite.as_str()).or_default().push(t);
    }
    let count =
        |tests: &[&TestRecord], s: TestStatus| tests.iter().filter(|t| t.status == s).count();
    let all: Vec<&TestRecord> = run.tests.iter().collect();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" errors=\"0\"{}{}>",
        escape(&run.meta.key),
        all.len(),
        count(&all, TestStatus::Failed),
        count(&all, TestStatus::Skipped),
        run.meta
            .started_at
            .as_deref()
            .map(|t| format!(" timestamp=\"{}\"", escape(t)))
            .unwrap_or_default(),
        run.meta
            .duration_ms
            .map(|d| format!(" time=\"{:.3}\"", d / 1000.0))
            .unwrap_or_default(),
    );
    for (suite, tests) in &suites {
        let _ = writeln!(
            x,
            "    <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" errors=\"0\">",
            escape(suite),
            tests.len(),
            count(tests, TestStatus::Failed),
            count(tests, TestStatus::Skipped)
        );
        for t in tests {
            let _ = write!(
                x,
                "        <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
                escape(&t.name),
                escape(suite),
                t.duration_ms / 1000.0
            );
            let message = escape(t.message.as_deref().unwrap_or(""));
            match t.status {
                TestStatus::Passed => x.push_str("/>\n"),
                TestStatus::Failed => {
                    let _ = writeln!(
                        x,
                        ">\n            <failure message=\"{message}\" type=\"failed on all {} attempts\"/>\n        </testcase>",
                        t.attempts
                    );
                }
                TestStatus::Flaky => {
                    // nextest's own element for "failed, then passed on a retry".
                    let _ = writeln!(
                        x,
                        ">\n            <flakyFailure message=\"passed on attempt {}\" type=\"flaky\"/>\n        </testcase>",
                        t.attempts
                    );
                }
                TestStatus::Skipped => {
                    let _ = writeln!(
                        x,
                        ">\n            <skipped message=\"{}\"/>\n        </testcase>",
                        escape(t.skip_reason.as_deref().unwrap_or("skipped"))
                    );
                }
            }
        }
        x.push_str("    </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}

#[cfg(test)]
mod tests {
    use crate::history::junit;

    #[test]
    fn merged_junit_reads_back_to_the_same_results() {
        let text = include_str!("../../tests/data/nextest/flaky-and-failing.xml");
        let original = junit::parse(text).unwrap();
        let run = crate::analysis::testing::run(1, "c", &[]);
        let run = crate::history::StoredRun {
            tests: original.tests.clone(),
            ..run
        };
        let again = junit::parse(&super::document(&run)).unwrap();
        let strip = |r: &junit::JunitReport| {
            r.tests
                .iter()
                .map(|t| (t.id(), t.status, t.attempts, t.skip_reason.clone()))
                .collect::<Vec<_>>()
        };
        let mut a = strip(&original);
        let mut b = strip(&again);
        a.sort_by(|x, y| x.0.cmp(&y.0));
        b.sort_by(|x, y| x.0.cmp(&y.0));
        // Attempts of a flaky test survive only as a count in the message; statuses and
        // skip reasons must survive exactly.
        let key = |v: &Vec<(String, crate::history::TestStatus, u32, Option<String>)>| {
            v.iter()
                .map(|t| (t.0.clone(), t.1, t.3.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(key(&a), key(&b));
    }
}
