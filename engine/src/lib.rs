//! Validated zero-copy GGUF loading with deadlines, progress and cancellation.

pub mod config;
pub mod fixture;
pub mod forward;
pub mod gguf;
pub mod load;
pub mod preflight;
pub mod registry;
