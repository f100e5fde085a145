//! The message a test fails with when its budget runs out.

use std::fmt;
use std::time::Duration;

use crate::budget::Budget;

/// What happened to the thread that ran the test body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyThread {
    /// nextest's process-per-test mode: the process ends with the failure, so does the thread.
    EndsWithProcess,
    /// Several tests share the process (`cargo test`): the thread keeps running, detached.
    Abandoned,
}

/// Everything a timeout failure reports. Built by the watchdog; public so its rendering can
/// be tested with fixed values.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// The test's path.
    pub test: String,
    /// The budget that ran out, with its derivation.
    pub budget: Budget,
    /// Time since the test started.
    pub elapsed: Duration,
    /// The last stage breadcrumbs, oldest first, with their time since start.
    pub stages: Vec<(Duration, String)>,
    /// The last progress line and when it was reported.
    pub progress: Option<(Duration, String)>,
    /// Environment facts (`key`, `value`).
    pub facts: Vec<(&'static str, String)>,
    /// The fate of the body's thread.
    pub body_thread: BodyThread,
}

fn secs(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "gauntlet-harness: test `{}` ran out of its time budget",
            self.test
        )?;
        let class = self
            .budget
            .class
            .map_or("literal".to_owned(), |c| c.to_string());
        writeln!(f, "  budget:    {} [{class}]", self.budget)?;
        writeln!(f, "  elapsed:   {}", secs(self.elapsed))?;
        if self.stages.is_empty() {
            writeln!(f, "  stages:    none recorded")?;
        } else {
            writeln!(f, "  stages:    (last {}, oldest first)", self.stages.len())?;
            for (at, name) in &self.stages {
                writeln!(f, "    +{:<9} {name}", secs(*at))?;
            }
        }
        if let Some((at, text)) = &self.progress {
            writeln!(f, "  progress:  {text} (at +{})", secs(*at))?;
        }
        writeln!(f, "  environment:")?;
        let width = self.facts.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (key, value) in &self.facts {
            writeln!(f, "    {key:<width$}  {value}")?;
        }
        let thread = match self.body_thread {
            BodyThread::EndsWithProcess => {
                "nextest runs this test in its own process; the body's thread ends with it"
            }
            BodyThread::Abandoned => {
                "the body's thread was abandoned and keeps running until the test binary \
                 exits (tests share a process under `cargo test`; nextest would end it)"
            }
        };
        writeln!(f, "  thread:    {thread}")?;
        let hint = if self.stages.is_empty() {
            "call gauntlet_harness::stage(\"…\") at each step of the test to see where it stops; \
             if the work is legitimately slow here, raise [timeouts] in gauntlet.toml or set \
             GAUNTLET_TEST_TIMEOUT_MULTIPLIER"
        } else {
            "the last stage above is where it stopped; pass gauntlet_harness::deadline() to the \
             work so it can stop cooperatively, or raise [timeouts] in gauntlet.toml / \
             GAUNTLET_TEST_TIMEOUT_MULTIPLIER if it is legitimately slow here"
        };
        write!(f, "  hint:      {hint}")?;
        Ok(())
    }
}
