//! The `#[timeout]` attribute of gauntlet-harness.
