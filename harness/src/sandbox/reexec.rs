//! `sandboxed!`: run the current test again, alone, inside a sandbox, and assert on the outcome.
//!
//! The test binary is re-executed with `<test name> --exact --nocapture` and an environment marker
//! naming the test. In the re-executed process the marker matches and the macro returns, so the
//! test body runs under the limits; in the original process the macro runs the sandbox, hands the
//! outcome to the check, and returns before the body.

use std::process::Command;

use super::{Limits, SandboxBuilder, SandboxError, SandboxOutcome, sandbox_required};

/// Environment marker set on the re-executed test; holds the test's name.
pub const INSIDE_ENV: &str = "GAUNTLET_SANDBOXED_TEST";

/// What [`reexec_current_test`] decided.
#[derive(Debug)]
pub enum ReexecResult {
    /// This process is the sandboxed re-run: execute the test body.
    Inside,
    /// The sandboxed re-run finished with this outcome.
    Outcome(Box<SandboxOutcome>),
    /// No mechanism is available; the reason.
    Skipped(String),
}

impl From<Limits> for SandboxBuilder {
    fn from(limits: Limits) -> Self {
        super::Sandbox::builder().limits(limits)
    }
}

/// Turns the type name of a function item declared inside a test into the name libtest knows
/// the test by: the crate name and the marker are dropped, as are closure segments.
pub fn current_test_name(marker_type_name: &str) -> String {
    let mut parts: Vec<&str> = marker_type_name
        .split("::")
        .filter(|p| !p.starts_with("{{"))
        .collect();
    parts.pop(); // the marker fn
    if parts.len() > 1 {
        parts.remove(0); // the crate
    }
    parts.join("::")
}

/// Runs `test_name` of the current test binary inside the sandbox `builder` describes, unless
/// this process already is that run.
pub fn reexec_current_test(builder: impl Into<SandboxBuilder>, test_name: &str) -> ReexecResult {
    if std::env::var(INSIDE_ENV).is_ok_and(|v| v == test_name) {
        return ReexecResult::Inside;
    }
    let sandbox = match builder.into().build() {
        Ok(s) => s,
        Err(SandboxError::Unavailable { reason }) => return ReexecResult::Skipped(reason),
        Err(e) => panic!("sandboxed!({test_name}): {e}"),
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => panic!("sandboxed!({test_name}): cannot find the test binary to re-run: {e}"),
    };
    let mut cmd = Command::new(exe);
    cmd.args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE_ENV, test_name);
    match sandbox.run(cmd) {
        Ok(o) => ReexecResult::Outcome(Box::new(o)),
        Err(e) => panic!("sandboxed!({test_name}): {e}"),
    }
}

/// Prints the skip line, or fails when `GAUNTLET_REQUIRE_SANDBOX=1` forbids skipping.
#[doc(hidden)]
pub fn skip_or_fail(reason: &str) {
    if sandbox_required() {
        panic!("GAUNTLET_REQUIRE_SANDBOX=1 but no sandbox is available: {reason}");
    }
    println!("SKIP {reason}");
}

/// Re-runs the current test inside a sandbox; the code after the macro is the sandboxed body.
///
/// `sandboxed!(limits)` requires the sandboxed run to pass; `sandboxed!(limits, |outcome| …)`
/// hands the [`SandboxOutcome`] to a check instead, so a test can assert on its own memory
/// behaviour (expect an OOM kill, bound the peak). `limits` is a [`Limits`] or a
/// [`SandboxBuilder`]. Without a sandbox mechanism the test prints `SKIP <reason>` and passes,
/// unless `GAUNTLET_REQUIRE_SANDBOX=1`. The test function must return `()`.
///
/// ```no_run
/// use gauntlet_harness::sandbox::Sandbox;
///
/// #[test]
/// fn large_buffer_is_oom_killed_at_64_mib() {
///     gauntlet_harness::sandboxed!(
///         Sandbox::builder().memory_max(64 << 20).swap_max(0).allow_fallback(false),
///         |o| assert!(o.oom_killed, "{}", o.summary())
///     );
///     let v = vec![1u8; 256 << 20];
///     std::hint::black_box(v);
/// }
/// ```
#[macro_export]
macro_rules! sandboxed {
    ($limits:expr) => {
        $crate::sandboxed!($limits, |outcome: &$crate::sandbox::SandboxOutcome| {
            assert!(
                outcome.success(),
                "the sandboxed run of this test failed: {}\n--- stderr ---\n{}",
                outcome.summary(),
                String::from_utf8_lossy(&outcome.stderr)
            );
        })
    };
    ($limits:expr, $check:expr) => {{
        fn __gauntlet_sandboxed_marker() {}
        let name = $crate::sandbox::current_test_name(::std::any::type_name_of_val(
            &__gauntlet_sandboxed_marker,
        ));
        match $crate::sandbox::reexec_current_test($limits, &name) {
            $crate::sandbox::ReexecResult::Inside => {}
            $crate::sandbox::ReexecResult::Outcome(outcome) => {
                let check: &dyn Fn(&$crate::sandbox::SandboxOutcome) = &$check;
                check(&outcome);
                return;
            }
            $crate::sandbox::ReexecResult::Skipped(reason) => {
                $crate::sandbox::skip_or_fail(&reason);
                return;
            }
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_name_drops_crate_marker_and_closures() {
        let cases = [
            ("sandbox_it::oom_case::__m", "oom_case"),
            ("my_crate::tests::deep::case::__m", "tests::deep::case"),
            ("my_crate::tests::case::{{closure}}::__m", "tests::case"),
        ];
        for (input, want) in cases {
            assert_eq!(current_test_name(input), want, "{input}");
        }
    }

    #[test]
    fn marker_type_name_has_the_expected_shape() {
        fn marker() {}
        let name = current_test_name(std::any::type_name_of_val(&marker));
        assert_eq!(
            name,
            "sandbox::reexec::tests::marker_type_name_has_the_expected_shape"
        );
    }
}
