//! How a [`SlowSource`](super::SlowSource) misbehaves.

use std::time::Duration;

/// The I/O error a source fails with at an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// `ErrorKind::ConnectionReset`: a network transfer cut off.
    ConnectionReset,
    /// `ErrorKind::UnexpectedEof`: the file ended early.
    UnexpectedEof,
    /// `ErrorKind::Other`: anything else.
    Other,
}

impl FaultKind {
    pub(crate) fn error_kind(self) -> std::io::ErrorKind {
        match self {
            Self::ConnectionReset => std::io::ErrorKind::ConnectionReset,
            Self::UnexpectedEof => std::io::ErrorKind::UnexpectedEof,
            Self::Other => std::io::ErrorKind::Other,
        }
    }
}

/// A pause when the read position first reaches `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stall {
    /// Byte offset at which the source stalls.
    pub offset: u64,
    /// How long it stalls.
    pub duration: Duration,
}

/// The behaviour of a [`SlowSource`](super::SlowSource). Built with chained setters; the
/// default serves at full speed with no faults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    /// Bytes per second; `None` for unlimited.
    pub throughput: Option<u64>,
    /// Fixed delay added to every read.
    pub latency: Duration,
    /// Up to this much extra delay per read, drawn from a generator seeded with `seed`.
    pub jitter: Duration,
    /// The jitter seed, so a run can be replayed.
    pub seed: u64,
    /// Stalls, each hit once.
    pub stalls: Vec<Stall>,
    /// Every read at or after this offset fails with this kind.
    pub fault: Option<(u64, FaultKind)>,
    /// The source ends (reads return 0) at this offset, even if the inner reader has more.
    pub truncate_at: Option<u64>,
    /// Largest number of bytes served by one read (like a network segment).
    pub max_read: Option<usize>,
}

impl Profile {
    /// Full speed, no faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Limits throughput to `bytes_per_second`.
    #[must_use]
    pub fn throughput(mut self, bytes_per_second: u64) -> Self {
        self.throughput = (bytes_per_second > 0).then_some(bytes_per_second);
        self
    }

    /// Adds a fixed delay to every read.
    #[must_use]
    pub fn latency(mut self, per_read: Duration) -> Self {
        self.latency = per_read;
        self
    }

    /// Adds up to `max` random extra delay per read, reproducible from `seed`.
    #[must_use]
    pub fn jitter(mut self, max: Duration, seed: u64) -> Self {
        self.jitter = max;
        self.seed = seed;
        self
    }

    /// Stalls for `duration` when reading first reaches `offset`.
    #[must_use]
    pub fn stall(mut self, offset: u64, duration: Duration) -> Self {
        self.stalls.push(Stall { offset, duration });
        self.stalls.sort_by_key(|s| s.offset);
        self
    }

    /// Fails every read at or after `offset` with `kind`.
    #[must_use]
    pub fn fail_at(mut self, offset: u64, kind: FaultKind) -> Self {
        self.fault = Some((offset, kind));
        self
    }

    /// Ends the source at `offset`.
    #[must_use]
    pub fn truncate_at(mut self, offset: u64) -> Self {
        self.truncate_at = Some(offset);
        self
    }

    /// Serves at most `bytes` per read.
    #[must_use]
    pub fn max_read(mut self, bytes: usize) -> Self {
        self.max_read = (bytes > 0).then_some(bytes);
        self
    }
}
