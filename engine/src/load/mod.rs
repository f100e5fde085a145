//! Timed model loading: deadlines, progress events, cooperative cancellation.
//!
//! One loader, two front doors: blocking ([`Loader::load_path`], [`Loader::load_reader`])
//! and async ([`Loader::load_path_async`], [`Loader::load_reader_async`]). Every load
//! passes the same stages ([`Stage`]) and reports [`ProgressEvent`]s at each stage
//! change and at an interval. Deadline and cancellation are checked between chunks (at
//! most `chunk_size` bytes of work), so after a [`LoadError::TimedOut`] or
//! [`LoadError::Cancelled`] at most one more chunk ran, and the mapping, buffers and
//! descriptors are released before the error is returned. Loads beyond the
//! process-wide [`LoadGate`] limit wait their turn within their own deadline.
//!
//! ```no_run
//! use std::time::Duration;
//! use gauntlet_engine::load::{LoadOptions, Loader};
//!
//! let model = Loader::new(LoadOptions::default().timeout(Duration::from_secs(60)))
//!     .load_path("model.gguf")?;
//! println!("{:.2} GB/s", model.stats().gb_per_s());
//! # Ok::<(), gauntlet_engine::load::LoadError>(())
//! ```

mod asynchronous;
mod blocking;
mod error;
mod gate;
mod mode;
mod model;
mod options;
mod progress;
mod stages;

use std::io::{Read, Seek};
use std::path::Path;

use tokio::io::{AsyncRead, AsyncSeek};

pub use error::LoadError;
pub use gate::{GatePermit, LoadGate};
pub use mode::LoadMode;
pub use model::{LoadStats, LoadedModel};
pub use options::{DEFAULT_CHUNK_SIZE, DEFAULT_TIMEOUT, LoadOptions};
pub use progress::{ProgressEvent, ProgressSink, Stage};
pub use tokio_util::sync::CancellationToken;

/// Loads GGUF models with the options it was built with.
#[derive(Debug, Clone, Default)]
pub struct Loader {
    opts: LoadOptions,
}

impl Loader {
    /// A loader with these options.
    pub fn new(opts: LoadOptions) -> Self {
        Loader { opts }
    }

    /// The options.
    pub fn options(&self) -> &LoadOptions {
        &self.opts
    }

    /// Loads a file on this thread, in the configured mode.
    pub fn load_path(&self, path: impl AsRef<Path>) -> Result<LoadedModel, LoadError> {
        blocking::load_path(&self.opts, path.as_ref())
    }

    /// Loads from any seekable reader on this thread (always read mode). The model is
    /// the whole stream from position 0.
    pub fn load_reader<R: Read + Seek>(&self, reader: R) -> Result<LoadedModel, LoadError> {
        blocking::load_reader(&self.opts, reader)
    }

    /// Loads a file on tokio's blocking pool. Dropping the future cancels the load;
    /// the returned error arrives only after the work has stopped.
    pub async fn load_path_async(&self, path: impl AsRef<Path>) -> Result<LoadedModel, LoadError> {
        asynchronous::load_path(&self.opts, path.as_ref().to_path_buf()).await
    }

    /// Loads from an async reader (always read mode), timing on tokio's clock.
    pub async fn load_reader_async<R: AsyncRead + AsyncSeek + Unpin + Send>(
        &self,
        reader: R,
    ) -> Result<LoadedModel, LoadError> {
        asynchronous::load_reader(&self.opts, reader).await
    }
}
