//! Slow and faulty data sources and a mock loader, for testing code that waits on I/O.
//!
//! [`SlowSource`] wraps any reader (std `Read + Seek` or tokio `AsyncRead + AsyncSeek`) and
//! serves it according to a [`Profile`]: throughput, per-read latency, seeded jitter, stalls
//! at offsets, an injected error at an offset, truncation. In async mode every delay is a
//! `tokio::time::sleep`, so on a paused clock a 2 GiB transfer at 20 MB/s takes 107 virtual
//! seconds and milliseconds of wall time. [`PatternSource`] supplies any length of
//! deterministic bytes without allocating them; [`MockLoader`] stands in for a model loader.

mod loader;
mod pattern;
mod profile;
mod slow;

pub use loader::{MockLoadError, MockLoader, MockModel};
pub use pattern::PatternSource;
pub use profile::{FaultKind, Profile, Stall};
pub use slow::{SlowSource, Stats, StatsHandle};
