//! Environment-aware test timeouts, slow sources, sandboxes and stress runs; usable by any Rust project.

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
