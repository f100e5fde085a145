//! The runtime behind `#[timeout]`: runs the test body on its own thread, waits for it on the
//! test's thread with the budget as deadline, and fails with a [`Diagnostic`] on expiry.
//!
//! The body never shares a thread with the watchdog, so a body that spins, or an async body
//! that blocks its runtime's thread without yielding, still fails on time. Rust cannot kill a
//! thread: on expiry the body's thread is left running. Under nextest's process-per-test mode
//! the process exits right after the failure, which ends it; under `cargo test` it runs on
//! detached until the test binary exits, which the diagnostic says.

mod context;
mod diagnostic;

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::Duration;

pub use context::{BREADCRUMBS_KEPT, EnterGuard, TestContext, margin};
pub use diagnostic::{BodyThread, Diagnostic};

use crate::budget::{Base, Budget, Class, Policy, Request};
use crate::env::{Environment, Probe};

/// Records a stage breadcrumb for the running `#[timeout]` test (a no-op outside one).
pub fn stage(name: impl std::fmt::Display) {
    if let Some(ctx) = TestContext::current() {
        ctx.stage(name);
    }
}

/// Replaces the running test's progress line; the hook a test forwards loader progress
/// events to (a no-op outside a `#[timeout]` test).
pub fn progress(text: impl std::fmt::Display) {
    if let Some(ctx) = TestContext::current() {
        ctx.progress(text);
    }
}

/// The time the running test has left, minus a [`margin`] so that work given this deadline
/// stops cooperatively before the watchdog fires. Outside a `#[timeout]` test: the
/// `test_default` budget of this environment, minus the same margin.
pub fn deadline() -> Duration {
    if let Some(ctx) = TestContext::current() {
        return ctx.deadline();
    }
    let total = Budget::current(&Request::class(Class::TestDefault))
        .map_or_else(|_| Class::TestDefault.default_base(), |b| b.total);
    total.saturating_sub(margin(total))
}

/// What the `#[timeout]` attribute passes to [`run`].
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// `module_path!()::fn_name`.
    pub name: &'static str,
    /// The class key, or `None` for a literal.
    pub class: Option<&'static str>,
    /// The literal duration (validated at compile time by the macro).
    pub literal: Option<&'static str>,
    /// `option_env!("CARGO_MANIFEST_DIR")` of the test crate, to find its gauntlet.toml.
    pub manifest_dir: Option<&'static str>,
}

fn resolve(spec: &Spec) -> Result<Budget, String> {
    let base = match (spec.class, spec.literal) {
        (_, Some(text)) => {
            let d = humantime::parse_duration(text)
                .map_err(|e| format!("#[timeout({text:?})]: {e}"))?;
            Base::Literal(d)
        }
        (Some(key), None) => Base::Class(key.parse::<Class>().map_err(|e| e.to_string())?),
        (None, None) => Base::Class(Class::TestDefault),
    };
    let policy = Policy::for_crate(spec.manifest_dir).map_err(|e| e.to_string())?;
    let request = Request {
        base,
        path: None,
        model_size: None,
    };
    Budget::resolve(&request, &policy, Environment::detect(), &Probe::system())
        .map_err(|e| e.to_string())
}

/// Runs `body` under the watchdog. Called by the code `#[timeout]` generates.
#[doc(hidden)]
pub fn run<R, F>(spec: Spec, body: F) -> R
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    let budget = match resolve(&spec) {
        Ok(budget) => budget,
        Err(message) => panic!(
            "gauntlet-harness: cannot compute the budget of `{}`: {message}",
            spec.name
        ),
    };
    let total = budget.total;
    let ctx = TestContext::new(spec.name, budget);
    let _active = ctx.register_active();
    let (tx, rx) = mpsc::sync_channel(1);
    let body_ctx = ctx.clone();
    // Same name as the test's thread, so panic messages read as without the attribute.
    let mut builder = std::thread::Builder::new();
    if let Some(name) = std::thread::current().name() {
        builder = builder.name(name.to_owned());
    }
    let spawned = builder.spawn(move || {
        let _entered = body_ctx.enter();
        let outcome = panic::catch_unwind(AssertUnwindSafe(body));
        // The watchdog may have given up already; nobody is left to tell.
        let _ = tx.send(outcome);
    });
    let handle = match spawned {
        Ok(handle) => handle,
        Err(e) => panic!(
            "gauntlet-harness: cannot start a thread for `{}`: {e}",
            spec.name
        ),
    };
    match rx.recv_timeout(total) {
        Ok(Ok(value)) => {
            let _ = handle.join();
            value
        }
        Ok(Err(payload)) => {
            let _ = handle.join();
            // The original payload, so #[should_panic(expected = …)] matches as usual.
            panic::resume_unwind(payload)
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            let env = Environment::detect();
            let per_process = env.nextest.as_ref().is_some_and(|n| n.process_per_test());
            let diagnostic = Diagnostic {
                test: spec.name.to_owned(),
                budget: ctx.budget().clone(),
                elapsed: ctx.elapsed(),
                stages: ctx.stages(),
                progress: ctx.last_progress(),
                facts: env.facts(),
                body_thread: if per_process {
                    BodyThread::EndsWithProcess
                } else {
                    BodyThread::Abandoned
                },
            };
            panic!("{diagnostic}")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            panic!(
                "gauntlet-harness: the body of `{}` ended without reporting (aborted?)",
                spec.name
            )
        }
    }
}
