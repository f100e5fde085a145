//! Environment-aware test timeouts, slow sources, sandboxes and stress runs; usable by any Rust project.
//!
//! `#[timeout]` gives a test a budget that scales with where it runs (`gauntlet.toml`'s base
//! × the detected environment's factors × `GAUNTLET_TEST_TIMEOUT_MULTIPLIER`), runs the body on
//! its own thread, and fails with a diagnostic (derivation, stages, environment) on expiry:
//!
//! ```no_run
//! use gauntlet_harness::timeout;
//!
//! #[test]
//! #[timeout(class = "model_loading")]
//! fn loads_the_model() {
//!     gauntlet_harness::stage("open");
//!     let _deadline = gauntlet_harness::deadline(); // hand this to the loader
//! }
//! ```
//!
//! Every budget explains itself:
//!
//! ```
//! use gauntlet_harness::budget::{Budget, Class, Policy, Request};
//! use gauntlet_harness::env::{Ci, Environment, Probe};
//!
//! let env = Environment {
//!     ci: Some(Ci::GithubActions { self_hosted: false }),
//!     host_cpus: 4,
//!     ..Environment::default()
//! };
//! let probe = Probe::fake("/nonexistent").var_set("GAUNTLET_TEST_TIMEOUT_MULTIPLIER", "3");
//! let request = Request::class(Class::TestDefault);
//! let budget = Budget::resolve(&request, &Policy::default(), &env, &probe)?;
//! assert_eq!(
//!     budget.to_string(),
//!     "30s × 2.0 (github-actions, hosted) × 3.0 (GAUNTLET_TEST_TIMEOUT_MULTIPLIER) = 180s"
//! );
//! # Ok::<(), gauntlet_harness::budget::ConfigError>(())
//! ```
//!
//! Supported attribute order: below the test attribute (`#[test]`, `#[tokio::test]`,
//! `#[rstest]`); above `#[tokio::test]` it reorders itself. With rstest, write the full path
//! `#[gauntlet_harness::timeout(…)]`, since rstest treats a bare `#[timeout]` as its own.

pub mod budget;
pub mod env;
pub mod mock;
pub mod sandbox;
pub mod stress;
mod timeout;

pub use gauntlet_harness_macros::timeout;
pub use timeout::{
    BREADCRUMBS_KEPT, BodyThread, Diagnostic, EnterGuard, TestContext, deadline, margin, progress,
    stage,
};

/// Used by the code `#[timeout]` generates; not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::timeout::{Spec, run};
}
