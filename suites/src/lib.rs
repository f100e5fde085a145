//! Gauntlet's own test suites and the fixtures they share.

pub mod fixtures;
