//! What a caller can ask of one load.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::gate::LoadGate;
use super::mode::LoadMode;
use super::progress::ProgressSink;
use crate::config::LoadConfig;
use crate::preflight::SystemRoot;

/// Default bytes per populate/read step: large enough that per-step checks cost
/// nothing measurable, small enough that a cancel lands within tens of milliseconds.
pub const DEFAULT_CHUNK_SIZE: usize = 64 << 20;

/// Default budget for one load, the same as `[timeouts].model_loading`'s default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Options for one [`Loader`](super::Loader). Build with the setter methods.
#[derive(Clone)]
pub struct LoadOptions {
    pub(crate) mode: LoadMode,
    pub(crate) timeout: Option<Duration>,
    pub(crate) cancel: CancellationToken,
    pub(crate) chunk_size: usize,
    pub(crate) progress: Option<Arc<dyn ProgressSink>>,
    pub(crate) progress_interval: Duration,
    pub(crate) gate: Arc<LoadGate>,
    pub(crate) memcheck: Option<SystemRoot>,
}

impl std::fmt::Debug for LoadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadOptions")
            .field("mode", &self.mode)
            .field("timeout", &self.timeout)
            .field("chunk_size", &self.chunk_size)
            .field("progress", &self.progress.is_some())
            .field("progress_interval", &self.progress_interval)
            .field("memcheck", &self.memcheck)
            .finish_non_exhaustive()
    }
}

impl Default for LoadOptions {
    /// Mmap mode, a 60 s deadline (every wait is bounded unless a caller says
    /// otherwise with [`LoadOptions::no_timeout`]), 64 MiB chunks, no progress sink, 1 s
    /// interval, the global gate, no memory check.
    fn default() -> Self {
        LoadOptions {
            mode: LoadMode::Mmap,
            timeout: Some(DEFAULT_TIMEOUT),
            cancel: CancellationToken::new(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            progress: None,
            progress_interval: Duration::from_secs(1),
            gate: LoadGate::global(),
            memcheck: None,
        }
    }
}

impl LoadOptions {
    /// Options from resolved configuration: timeout, chunk size, interval, and the
    /// global gate's limit set to `concurrent_loads`.
    pub fn from_config(cfg: &LoadConfig) -> Self {
        let gate = LoadGate::global();
        gate.set_limit(cfg.concurrent_loads.value);
        LoadOptions {
            timeout: Some(cfg.model_loading_timeout.value),
            chunk_size: usize::try_from(cfg.chunk_size.value).unwrap_or(DEFAULT_CHUNK_SIZE),
            progress_interval: cfg.progress_interval.value,
            gate,
            ..LoadOptions::default()
        }
    }

    /// How tensor bytes become resident.
    pub fn mode(mut self, mode: LoadMode) -> Self {
        self.mode = mode;
        self
    }

    /// Budget for the whole load, gate wait included.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// No deadline: the load (and its wait at the gate) ends only when done or cancelled.
    pub fn no_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// A token that stops the load between chunks when cancelled.
    pub fn cancel_token(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    /// Bytes per populate/read step (at least one page).
    pub fn chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes.max(4096);
        self
    }

    /// Where progress events go.
    pub fn progress(mut self, sink: impl ProgressSink + 'static) -> Self {
        self.progress = Some(Arc::new(sink));
        self
    }

    /// Time between periodic events (stage changes are always reported).
    pub fn progress_interval(mut self, interval: Duration) -> Self {
        self.progress_interval = interval;
        self
    }

    /// A gate other than the global one (tests, or a host with its own policy).
    pub fn gate(mut self, gate: Arc<LoadGate>) -> Self {
        self.gate = gate;
        self
    }

    /// Refuse with [`LoadError::WontFit`](super::LoadError::WontFit) before allocating
    /// when the memory pre-flight against `root` says the model will not fit.
    pub fn memcheck(mut self, root: SystemRoot) -> Self {
        self.memcheck = Some(root);
        self
    }
}
