//! Progress events and the per-load bookkeeping that checks deadline and cancel.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::error::LoadError;
use super::options::LoadOptions;

/// The stages of a load, in the order they happen. A mode skips the stages it does not
/// have (`Read` has no `Map`/`Populate`; `Mmap` has no `Read`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// Waiting for a slot under the process-wide `concurrent_loads` gate.
    Queued,
    /// Opening the file or measuring the reader.
    Open,
    /// Reading the header bytes (up to the start of the data section).
    Header,
    /// Parsing and validating metadata.
    Metadata,
    /// Validating the tensor table (names, shapes, sizes, offsets) and the memory check.
    TensorIndex,
    /// Mapping the file.
    Map,
    /// Pre-faulting mapped pages, chunk by chunk.
    Populate,
    /// Copying tensor bytes into owned memory, chunk by chunk.
    Read,
    /// Finished.
    Done,
}

impl Stage {
    /// The name used in messages and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Queued => "queued",
            Stage::Open => "open",
            Stage::Header => "header",
            Stage::Metadata => "metadata",
            Stage::TensorIndex => "tensor_index",
            Stage::Map => "map",
            Stage::Populate => "populate",
            Stage::Read => "read",
            Stage::Done => "done",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A snapshot of a load's progress. Within one load, `stage`, `bytes_done` and
/// `tensors_done` never go backwards, and the last event is `Done` at 100 %.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressEvent {
    /// Current stage.
    pub stage: Stage,
    /// File bytes read or populated so far.
    pub bytes_done: u64,
    /// File length (0 until the file is opened).
    pub bytes_total: u64,
    /// Tensors whose bytes are all resident.
    pub tensors_done: u64,
    /// Tensors in the file (0 until the tensor table is parsed).
    pub tensors_total: u64,
    /// Time since the load started (including any wait at the gate).
    pub elapsed: Duration,
}

/// Receives progress events; called on the loading thread, so it should be quick.
pub trait ProgressSink: Send + Sync {
    /// One event.
    fn event(&self, event: &ProgressEvent);
}

impl<F: Fn(&ProgressEvent) + Send + Sync> ProgressSink for F {
    fn event(&self, event: &ProgressEvent) {
        self(event)
    }
}

/// The time base of one load: the wall clock for blocking loads, tokio's clock (which
/// tests can pause) for async reader loads.
pub(crate) trait Clock: Send {
    fn elapsed(&self) -> Duration;
}

pub(crate) struct StdClock(std::time::Instant);

impl StdClock {
    pub(crate) fn start() -> Self {
        StdClock(std::time::Instant::now())
    }
}

impl Clock for StdClock {
    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

pub(crate) struct TokioClock(tokio::time::Instant);

impl TokioClock {
    pub(crate) fn start() -> Self {
        TokioClock(tokio::time::Instant::now())
    }
}

impl Clock for TokioClock {
    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

/// One load's state: where it is, what it promised to report, and when it must stop.
pub(crate) struct Run<C: Clock> {
    clock: C,
    budget: Option<Duration>,
    cancel: CancellationToken,
    sink: Option<Arc<dyn ProgressSink>>,
    interval: Duration,
    last_emit: Duration,
    stage: Stage,
    bytes_done: u64,
    bytes_total: u64,
    tensors_done: u64,
    /// Sorted end offsets (in file bytes) of every tensor, to count finished tensors.
    tensor_ends: Vec<u64>,
}

impl<C: Clock> Run<C> {
    /// A run on `clock` under `opts`' deadline, cancel token and progress sink, the same
    /// for every pipeline.
    pub(crate) fn new(clock: C, opts: &LoadOptions) -> Self {
        Run {
            clock,
            budget: opts.timeout,
            cancel: opts.cancel.clone(),
            sink: opts.progress.clone(),
            interval: opts.progress_interval,
            last_emit: Duration::ZERO,
            stage: Stage::Queued,
            bytes_done: 0,
            bytes_total: 0,
            tensors_done: 0,
            tensor_ends: Vec::new(),
        }
    }

    pub(crate) fn event(&self) -> ProgressEvent {
        ProgressEvent {
            stage: self.stage,
            bytes_done: self.bytes_done,
            bytes_total: self.bytes_total,
            tensors_done: self.tensors_done,
            tensors_total: self.tensor_ends.len() as u64,
            elapsed: self.clock.elapsed(),
        }
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.clock.elapsed()
    }

    pub(crate) fn stage(&self) -> Stage {
        self.stage
    }

    pub(crate) fn remaining(&self) -> Option<Duration> {
        self.budget.map(|b| b.saturating_sub(self.clock.elapsed()))
    }

    pub(crate) fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    fn emit(&mut self) {
        let e = self.event();
        self.last_emit = e.elapsed;
        if let Some(sink) = &self.sink {
            sink.event(&e);
        }
    }

    /// Fails with `TimedOut` or `Cancelled` if the load must stop now.
    pub(crate) fn check(&self) -> Result<(), LoadError> {
        if self.cancel.is_cancelled() {
            return Err(self.cancelled());
        }
        match self.budget {
            Some(budget) if self.clock.elapsed() >= budget => Err(self.timed_out()),
            _ => Ok(()),
        }
    }

    pub(crate) fn timed_out(&self) -> LoadError {
        LoadError::TimedOut {
            stage: self.stage,
            bytes_done: self.bytes_done,
            bytes_total: self.bytes_total,
            elapsed: self.clock.elapsed(),
            budget: self.budget.unwrap_or_default(),
        }
    }

    pub(crate) fn cancelled(&self) -> LoadError {
        LoadError::Cancelled {
            stage: self.stage,
            bytes_done: self.bytes_done,
            bytes_total: self.bytes_total,
            elapsed: self.clock.elapsed(),
        }
    }

    /// Moves to `stage`, reports it, then checks deadline and cancel.
    pub(crate) fn enter(&mut self, stage: Stage) -> Result<(), LoadError> {
        debug_assert!(stage >= self.stage, "stages only move forward");
        self.stage = self.stage.max(stage);
        self.emit();
        self.check()
    }

    pub(crate) fn set_total(&mut self, bytes_total: u64) {
        self.bytes_total = bytes_total;
    }

    /// Records the tensor table: `ends` are absolute end offsets of each tensor's data.
    pub(crate) fn set_tensors(&mut self, mut ends: Vec<u64>) {
        ends.sort_unstable();
        self.tensor_ends = ends;
    }

    /// Marks file bytes `[0, upto)` as done (never moving backwards), reports at the
    /// interval, then checks deadline and cancel.
    pub(crate) fn reach(&mut self, upto: u64) -> Result<(), LoadError> {
        self.bytes_done = self.bytes_done.max(upto.min(self.bytes_total));
        let done = self
            .tensor_ends
            .partition_point(|&end| end <= self.bytes_done) as u64;
        self.tensors_done = self.tensors_done.max(done);
        if self.clock.elapsed().saturating_sub(self.last_emit) >= self.interval {
            self.emit();
        }
        self.check()
    }

    /// Reports the final event at 100 %.
    pub(crate) fn finish(&mut self) {
        self.bytes_done = self.bytes_total;
        self.tensors_done = self.tensor_ends.len() as u64;
        self.stage = Stage::Done;
        self.emit();
    }
}
