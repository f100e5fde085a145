//! The running test's context: its budget, start time, stage breadcrumbs and last progress
//! text, reachable from the body's thread (thread-local) and from the watchdog.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt::Display;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::budget::Budget;

/// How many breadcrumbs a diagnostic shows; older ones are dropped.
pub const BREADCRUMBS_KEPT: usize = 8;

#[derive(Debug)]
struct Inner {
    name: String,
    start: Instant,
    budget: Budget,
    stages: Mutex<VecDeque<(Duration, String)>>,
    progress: Mutex<Option<(Duration, String)>>,
}

/// A handle on the running `#[timeout]` test, cheap to clone and `Send`, so work moved to
/// other threads or tokio tasks can keep reporting stages to the right test.
#[derive(Debug, Clone)]
pub struct TestContext(Arc<Inner>);

thread_local! {
    static CURRENT: RefCell<Option<TestContext>> = const { RefCell::new(None) };
}

/// Every context whose watchdog is waiting, so a stage recorded on a thread the harness did
/// not start (a tokio worker) can still find its test when only one test is running, as in
/// nextest's process-per-test mode.
static ACTIVE: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());

/// Restores the previous thread-local context when dropped.
#[derive(Debug)]
pub struct EnterGuard(Option<TestContext>);

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// Removes a context from [`ACTIVE`] when its watchdog stops waiting.
#[derive(Debug)]
pub(crate) struct ActiveGuard(Weak<Inner>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        let mut active = ACTIVE.lock().unwrap_or_else(|p| p.into_inner());
        active.retain(|w| !w.ptr_eq(&self.0) && w.strong_count() > 0);
    }
}

impl TestContext {
    pub(crate) fn new(name: &str, budget: Budget) -> Self {
        Self(Arc::new(Inner {
            name: name.to_owned(),
            start: Instant::now(),
            budget,
            stages: Mutex::new(VecDeque::with_capacity(BREADCRUMBS_KEPT)),
            progress: Mutex::new(None),
        }))
    }

    /// The context of the test running on this thread, or the only running test when this
    /// thread was not started by the harness.
    pub fn current() -> Option<TestContext> {
        if let Some(ctx) = CURRENT.with(|c| c.borrow().clone()) {
            return Some(ctx);
        }
        let active = ACTIVE.lock().unwrap_or_else(|p| p.into_inner());
        let live: Vec<Arc<Inner>> = active.iter().filter_map(Weak::upgrade).collect();
        match live.as_slice() {
            [only] => Some(TestContext(Arc::clone(only))),
            _ => None,
        }
    }

    /// Makes this the current context of the calling thread until the guard drops.
    pub fn enter(&self) -> EnterGuard {
        let previous = CURRENT.with(|c| c.borrow_mut().replace(self.clone()));
        EnterGuard(previous)
    }

    pub(crate) fn register_active(&self) -> ActiveGuard {
        let weak = Arc::downgrade(&self.0);
        ACTIVE
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(weak.clone());
        ActiveGuard(weak)
    }

    /// The test's name (`module::path::test_fn`).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The budget the watchdog enforces.
    pub fn budget(&self) -> &Budget {
        &self.0.budget
    }

    /// Time since the test started.
    pub fn elapsed(&self) -> Duration {
        self.0.start.elapsed()
    }

    /// Records a breadcrumb; the last [`BREADCRUMBS_KEPT`] appear in a timeout diagnostic.
    pub fn stage(&self, name: impl Display) {
        let at = self.elapsed();
        let mut stages = self.0.stages.lock().unwrap_or_else(|p| p.into_inner());
        if stages.len() == BREADCRUMBS_KEPT {
            stages.pop_front();
        }
        stages.push_back((at, name.to_string()));
    }

    /// Replaces the progress line (for example a loader's "412 MiB of 1.1 GiB").
    pub fn progress(&self, text: impl Display) {
        let at = self.elapsed();
        *self.0.progress.lock().unwrap_or_else(|p| p.into_inner()) = Some((at, text.to_string()));
    }

    /// Remaining budget minus [`margin`], so cooperative deadlines fire before the watchdog.
    pub fn deadline(&self) -> Duration {
        let total = self.0.budget.total;
        total
            .saturating_sub(self.elapsed())
            .saturating_sub(margin(total))
    }

    pub(crate) fn stages(&self) -> Vec<(Duration, String)> {
        self.0
            .stages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    pub(crate) fn last_progress(&self) -> Option<(Duration, String)> {
        self.0
            .progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// How much earlier than the watchdog a cooperative deadline ends: a tenth of the budget,
/// at least 10 ms and at most 2 s, enough for a loader to notice and return `TimedOut`.
pub fn margin(total: Duration) -> Duration {
    (total / 10).clamp(Duration::from_millis(10), Duration::from_secs(2))
}
