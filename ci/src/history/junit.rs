//! Reads nextest's JUnit XML into [`TestRecord`]s.
//!
//! nextest writes one `<testcase>` per test with the *final* attempt's outcome and
//! nests the earlier attempts inside it: `<flakyFailure>`/`<flakyError>` when a retry
//! passed, `<rerunFailure>`/`<rerunError>` when every retry failed. Tests that print a
//! `SKIP <reason>` line (the harness convention for "cannot run here") pass as far as
//! nextest knows; their reason is in the testcase's own `<system-out>`, which nextest
//! only stores with `junit.store-success-output = true`.

use std::path::{Path, PathBuf};

use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};

use super::{TestRecord, TestStatus};

/// Deepest element nesting accepted; nextest's JUnit is five levels deep, so anything
/// far beyond this is not JUnit and would only make the element stack grow.
const MAX_DEPTH: usize = 64;

/// A JUnit file that could not be read, with the file and line at fault.
#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: {kind}")]
pub struct JunitError {
    /// The file being read.
    pub path: PathBuf,
    /// 1-based line of the problem (0 when the file could not be opened).
    pub line: usize,
    /// What was wrong.
    pub kind: JunitErrorKind,
}

/// What was wrong with a JUnit file.
#[derive(Debug, thiserror::Error)]
pub enum JunitErrorKind {
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    /// The file is not valid UTF-8 XML.
    #[error(
        "not well-formed XML: {0}; pass the junit.xml that nextest wrote (target/nextest/<profile>/junit.xml)"
    )]
    Xml(String),
    /// A required attribute is missing.
    #[error("<{element}> has no `{attribute}` attribute; is this nextest's JUnit output?")]
    MissingAttribute {
        /// Element name.
        element: &'static str,
        /// Attribute name.
        attribute: &'static str,
    },
    /// A `time` attribute is not a non-negative number of seconds.
    #[error(
        "<{element}> time=\"{value}\" is not a number of seconds (expected e.g. time=\"0.125\")"
    )]
    BadTime {
        /// Element name.
        element: &'static str,
        /// The text found.
        value: String,
    },
    /// The root element is not `<testsuites>` or `<testsuite>`.
    #[error("root element is <{0}>, expected <testsuites> or <testsuite>")]
    NotJunit(String),
    /// Elements nest deeper than any JUnit file does.
    #[error("elements nest deeper than {MAX_DEPTH} levels; this is not a JUnit report")]
    TooDeep,
}

/// One JUnit file's content.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JunitReport {
    /// `timestamp` of the root element (RFC 3339, as nextest writes it).
    pub started_at: Option<String>,
    /// `time` of the root element, in milliseconds.
    pub duration_ms: Option<f64>,
    /// Every test case, in file order.
    pub tests: Vec<TestRecord>,
}

/// Reads and parses a JUnit file.
pub fn read(path: &Path) -> Result<JunitReport, JunitError> {
    let text = std::fs::read_to_string(path).map_err(|e| JunitError {
        path: path.to_owned(),
        line: 0,
        kind: JunitErrorKind::Io(e),
    })?;
    parse(&text).map_err(|(offset, kind)| JunitError {
        path: path.to_owned(),
        line: line_of(&text, offset),
        kind,
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// A test case being assembled while its children are read.
#[derive(Default)]
struct CaseBuilder {
    suite: String,
    name: String,
    time_ms: f64,
    failed: bool,
    failure_message: Option<String>,
    flaky_attempts: u32,
    rerun_attempts: u32,
    skipped: Option<String>,
    stdout: String,
}

impl CaseBuilder {
    fn finish(self) -> TestRecord {
        let skip_from_output = self.stdout.lines().find_map(|l| {
            l.trim_start()
                .strip_prefix("SKIP ")
                .map(|r| r.trim().to_owned())
        });
        let (status, attempts, skip_reason) = if self.failed {
            (TestStatus::Failed, 1 + self.rerun_attempts, None)
        } else if self.flaky_attempts > 0 {
            (TestStatus::Flaky, 1 + self.flaky_attempts, None)
        } else if let Some(reason) = self.skipped {
            (TestStatus::Skipped, 0, Some(reason))
        } else if let Some(reason) = skip_from_output {
            (TestStatus::Skipped, 1, Some(reason))
        } else {
            (TestStatus::Passed, 1, None)
        };
        TestRecord {
            suite: self.suite,
            name: self.name,
            status,
            duration_ms: self.time_ms,
            attempts,
            skip_reason,
            message: self.failure_message,
        }
    }
}

type ParseError = (usize, JunitErrorKind);

/// Parses JUnit XML text; errors carry the byte offset of the problem.
pub fn parse(text: &str) -> Result<JunitReport, ParseError> {
    let mut reader = Reader::from_str(text);
    let mut report = JunitReport::default();
    let mut stack: Vec<String> = Vec::new();
    let mut suite_name = String::new();
    let mut case: Option<CaseBuilder> = None;
    let mut saw_root = false;

    loop {
        let pos = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = reader
            .read_event()
            .map_err(|e| (error_offset(&reader), JunitErrorKind::Xml(e.to_string())))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(event, Event::Empty(_));
                let name = e.local_name().as_ref().to_owned();
                if !saw_root {
                    saw_root = true;
                    if name != "testsuites" && name != "testsuite" {
                        return Err((pos, JunitErrorKind::NotJunit(name)));
                    }
                    if name == "testsuites" {
                        report.started_at = attr(e, "timestamp").map_err(|k| (pos, k))?;
                        report.duration_ms =
                            optional_time(e, "testsuites").map_err(|k| (pos, k))?;
                    }
                }
                match name.as_str() {
                    "testsuite" => {
                        suite_name = attr(e, "name")
                            .map_err(|k| (pos, k))?
                            .ok_or((pos, missing("testsuite", "name")))?;
                        if report.started_at.is_none() && stack.is_empty() {
                            report.started_at = attr(e, "timestamp").map_err(|k| (pos, k))?;
                            report.duration_ms =
                                optional_time(e, "testsuite").map_err(|k| (pos, k))?;
                        }
                    }
                    "testcase" => {
                        let name = attr(e, "name")
                            .map_err(|k| (pos, k))?
                            .ok_or((pos, missing("testcase", "name")))?;
                        let time_ms = optional_time(e, "testcase")
                            .map_err(|k| (pos, k))?
                            .unwrap_or(0.0);
                        let suite = if suite_name.is_empty() {
                            attr(e, "classname")
                                .map_err(|k| (pos, k))?
                                .unwrap_or_default()
                        } else {
                            suite_name.clone()
                        };
                        let builder = CaseBuilder {
                            suite,
                            name,
                            time_ms,
                            ..CaseBuilder::default()
                        };
                        if is_empty {
                            report.tests.push(builder.finish());
                        } else {
                            case = Some(builder);
                        }
                    }
                    outcome if in_case(&stack) => {
                        if let Some(c) = case.as_mut() {
                            match outcome {
                                "failure" | "error" => {
                                    c.failed = true;
                                    c.failure_message = attr(e, "message").map_err(|k| (pos, k))?;
                                }
                                "flakyFailure" | "flakyError" => c.flaky_attempts += 1,
                                "rerunFailure" | "rerunError" => c.rerun_attempts += 1,
                                "skipped" => {
                                    c.skipped = Some(
                                        attr(e, "message")
                                            .map_err(|k| (pos, k))?
                                            .unwrap_or_else(|| "skipped".to_owned()),
                                    );
                                }
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
                if !is_empty {
                    if stack.len() >= MAX_DEPTH {
                        return Err((pos, JunitErrorKind::TooDeep));
                    }
                    stack.push(name);
                }
            }
            Event::End(_) => {
                if stack.pop().as_deref() == Some("testcase")
                    && let Some(c) = case.take()
                {
                    report.tests.push(c.finish());
                }
            }
            Event::Text(ref t) if in_case_stdout(&stack) => {
                if let Some(c) = case.as_mut() {
                    c.stdout.push_str(&t.xml10_content());
                }
            }
            Event::CData(ref t) if in_case_stdout(&stack) => {
                if let Some(c) = case.as_mut() {
                    let raw: &str = t.as_ref();
                    c.stdout.push_str(raw);
                }
            }
            Event::GeneralRef(ref r) if in_case_stdout(&stack) => {
                let resolved = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .map_err(|e| (pos, JunitErrorKind::Xml(e.to_string())))?
                        .map(String::from)
                } else {
                    resolve_predefined_entity(&r.xml10_content()).map(str::to_owned)
                };
                if let (Some(c), Some(s)) = (case.as_mut(), resolved) {
                    c.stdout.push_str(&s);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root {
        return Err((
            0,
            JunitErrorKind::NotJunit("(none: the file is empty)".to_owned()),
        ));
    }
    if !stack.is_empty() {
        return Err((
            text.len(),
            JunitErrorKind::Xml(format!("file ends inside <{}>", stack.join("><"))),
        ));
    }
    Ok(report)
}

fn error_offset(reader: &Reader<&[u8]>) -> usize {
    usize::try_from(reader.error_position()).unwrap_or(usize::MAX)
}

fn in_case(stack: &[String]) -> bool {
    stack.last().is_some_and(|s| s == "testcase")
}

/// Only the testcase's own `<system-out>` counts: the ones nested in
/// `<flakyFailure>` belong to failed attempts.
fn in_case_stdout(stack: &[String]) -> bool {
    matches!(stack, [.., case, out] if case == "testcase" && out == "system-out")
}

fn missing(element: &'static str, attribute: &'static str) -> JunitErrorKind {
    JunitErrorKind::MissingAttribute { element, attribute }
}

fn attr(e: &BytesStart<'_>, name: &str) -> Result<Option<String>, JunitErrorKind> {
    let found = e
        .try_get_attribute(name)
        .map_err(|err| JunitErrorKind::Xml(err.to_string()))?;
    match found {
        None => Ok(None),
        Some(a) => a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map(|v| Some(v.into_owned()))
            .map_err(|err| JunitErrorKind::Xml(err.to_string())),
    }
}

fn optional_time(e: &BytesStart<'_>, element: &'static str) -> Result<Option<f64>, JunitErrorKind> {
    match attr(e, "time")? {
        None => Ok(None),
        Some(v) => match v.trim().parse::<f64>() {
            Ok(secs) if secs.is_finite() && secs >= 0.0 => Ok(Some(secs * 1000.0)),
            _ => Err(JunitErrorKind::BadTime { element, value: v }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = include_str!("../../tests/data/nextest/flaky-and-failing.xml");

    fn find<'a>(r: &'a JunitReport, name: &str) -> &'a TestRecord {
        r.tests.iter().find(|t| t.name == name).unwrap()
    }

    #[test]
    fn real_nextest_report_yields_each_outcome() {
        let r = parse(REAL).unwrap();
        assert_eq!(r.tests.len(), 4);
        assert!(
            r.started_at
                .as_deref()
                .is_some_and(|s| s.starts_with("2026-"))
        );
        let flaky = find(&r, "tests::parses_header_flaky");
        assert_eq!((flaky.status, flaky.attempts), (TestStatus::Flaky, 2));
        let failed = find(&r, "tests::rejects_truncated_file");
        assert_eq!((failed.status, failed.attempts), (TestStatus::Failed, 3));
        assert!(
            failed
                .message
                .as_deref()
                .is_some_and(|m| m.contains("panicked"))
        );
        let skipped = find(&r, "tests::cgroup_limits_apply");
        assert_eq!(skipped.status, TestStatus::Skipped);
        assert_eq!(
            skipped.skip_reason.as_deref(),
            Some("cgroup v2 is not writable here")
        );
        assert_eq!(
            find(&r, "tests::sums_small_range").status,
            TestStatus::Passed
        );
        assert!(r.tests.iter().all(|t| t.suite == "sample"));
    }

    #[test]
    fn explicit_skipped_element_and_entities_are_read() {
        let xml = r#"<testsuite name="s"><testcase name="a&amp;b" time="1.5"><skipped message="no &lt;gpu&gt;"/></testcase></testsuite>"#;
        let r = parse(xml).unwrap();
        assert_eq!(r.tests[0].name, "a&b");
        assert_eq!(r.tests[0].duration_ms, 1500.0);
        assert_eq!(r.tests[0].skip_reason.as_deref(), Some("no <gpu>"));
    }

    #[test]
    fn skip_line_inside_a_failed_attempt_does_not_count() {
        let xml = "<testsuites><testsuite name=\"s\"><testcase name=\"t\"><flakyFailure><system-out>SKIP nope</system-out></flakyFailure><system-out>ok</system-out></testcase></testsuite></testsuites>";
        let r = parse(xml).unwrap();
        assert_eq!(r.tests[0].status, TestStatus::Flaky);
    }

    #[rstest::rstest]
    #[case::empty_file_should_error("")]
    #[case::html_root_should_error("<html></html>")]
    #[case::testcase_without_name_should_error("<testsuite name=\"s\"><testcase/></testsuite>")]
    #[case::negative_time_should_error(
        "<testsuite name=\"s\"><testcase name=\"t\" time=\"-1\"/></testsuite>"
    )]
    #[case::text_time_should_error(
        "<testsuite name=\"s\"><testcase name=\"t\" time=\"soon\"/></testsuite>"
    )]
    #[case::truncated_file_should_error("<testsuites><testsuite name=\"s\"><testcase name=\"t\">")]
    #[case::mismatched_tags_should_error("<testsuites><testsuite name=\"s\"></testsuites>")]
    fn rejects(#[case] xml: &str) {
        assert!(parse(xml).is_err(), "{xml:?} was accepted");
    }

    #[test]
    fn absurd_nesting_is_refused_not_followed() {
        let xml = format!("<testsuites>{}", "<x>".repeat(MAX_DEPTH + 5));
        assert!(matches!(parse(&xml), Err((_, JunitErrorKind::TooDeep))));
    }

    #[test]
    fn error_names_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.xml");
        std::fs::write(
            &path,
            "<testsuites>\n<testsuite name=\"s\">\n<testcase time=\"1\"/>\n",
        )
        .unwrap();
        let err = read(&path).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(
            err.to_string()
                .contains("j.xml:3: <testcase> has no `name`"),
            "{err}"
        );
    }
}
