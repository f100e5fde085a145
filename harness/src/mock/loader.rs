//! [`MockLoader`]: a stand-in for a slow model loader, for registry and server tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// A loader that takes `duration`, allocates (and touches) `bytes`, and can be told to fail
/// or panic on a given attempt. Clones share the call counter.
#[derive(Debug, Clone)]
pub struct MockLoader {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    duration: Duration,
    bytes: usize,
    fail_on: Option<u32>,
    panic_on: Option<u32>,
    calls: AtomicU32,
}

/// What a successful mock load returns.
#[derive(Debug)]
pub struct MockModel {
    /// Which call produced it (1-based).
    pub attempt: u32,
    /// The allocated memory, filled so its pages are resident.
    pub data: Vec<u8>,
}

/// The failure a [`MockLoader`] was told to produce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mock load failed on attempt {attempt} (configured with fail_on_attempt)")]
pub struct MockLoadError {
    /// The failing call (1-based).
    pub attempt: u32,
}

impl MockLoader {
    /// A loader that takes `duration` and allocates nothing.
    pub fn new(duration: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                duration,
                bytes: 0,
                fail_on: None,
                panic_on: None,
                calls: AtomicU32::new(0),
            }),
        }
    }

    fn with(&self, edit: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Inner {
            duration: self.inner.duration,
            bytes: self.inner.bytes,
            fail_on: self.inner.fail_on,
            panic_on: self.inner.panic_on,
            calls: AtomicU32::new(self.inner.calls.load(Ordering::Relaxed)),
        };
        edit(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Each successful load allocates and fills `bytes`.
    #[must_use]
    pub fn allocate(self, bytes: usize) -> Self {
        self.with(|i| i.bytes = bytes)
    }

    /// Call number `attempt` (1-based) returns [`MockLoadError`].
    #[must_use]
    pub fn fail_on_attempt(self, attempt: u32) -> Self {
        self.with(|i| i.fail_on = Some(attempt))
    }

    /// Call number `attempt` (1-based) panics, as a buggy loader would.
    #[must_use]
    pub fn panic_on_attempt(self, attempt: u32) -> Self {
        self.with(|i| i.panic_on = Some(attempt))
    }

    /// How many times `load` or `load_async` was called.
    pub fn calls(&self) -> u32 {
        self.inner.calls.load(Ordering::SeqCst)
    }

    fn begin(&self) -> u32 {
        self.inner.calls.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn finish(&self, attempt: u32) -> Result<MockModel, MockLoadError> {
        if self.inner.panic_on == Some(attempt) {
            panic!("mock loader panicked on attempt {attempt} (configured with panic_on_attempt)");
        }
        if self.inner.fail_on == Some(attempt) {
            return Err(MockLoadError { attempt });
        }
        Ok(MockModel {
            attempt,
            data: vec![0xA5; self.inner.bytes],
        })
    }

    /// Loads, blocking the thread for the configured duration.
    pub fn load(&self) -> Result<MockModel, MockLoadError> {
        let attempt = self.begin();
        std::thread::sleep(self.inner.duration);
        self.finish(attempt)
    }

    /// Loads, sleeping on tokio's clock (virtual under a paused clock).
    pub async fn load_async(&self) -> Result<MockModel, MockLoadError> {
        let attempt = self.begin();
        tokio::time::sleep(self.inner.duration).await;
        self.finish(attempt)
    }
}
