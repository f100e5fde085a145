//! The process-wide limit on loads running at once (`concurrent_loads`).
//!
//! Two loads of a >1 GiB model at once double peak memory and halve each one's
//! bandwidth; a third caller waiting its turn (bounded by its own deadline) is what
//! keeps a memory-bounded host alive.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

/// How often a blocked blocking-API waiter looks at its cancellation token: the token
/// cannot wake a condition variable, so this bounds how late a cancel is noticed.
const CANCEL_POLL: Duration = Duration::from_millis(20);

#[derive(Debug)]
struct State {
    running: usize,
    limit: usize,
}

/// Counts running loads and makes callers beyond the limit wait.
#[derive(Debug)]
pub struct LoadGate {
    state: Mutex<State>,
    freed: Condvar,
    freed_async: Notify,
}

/// A slot under the gate; dropping it lets the next waiter in.
#[derive(Debug)]
pub struct GatePermit {
    gate: Arc<LoadGate>,
}

impl Drop for GatePermit {
    fn drop(&mut self) {
        let mut s = self.gate.lock();
        s.running = s.running.saturating_sub(1);
        drop(s);
        self.gate.freed.notify_all();
        self.gate.freed_async.notify_waiters();
    }
}

/// Why [`LoadGate`] did not hand out a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GateStop {
    TimedOut,
    Cancelled,
}

impl LoadGate {
    /// A gate letting `limit` loads run at once (at least one).
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(LoadGate {
            state: Mutex::new(State {
                running: 0,
                limit: limit.max(1),
            }),
            freed: Condvar::new(),
            freed_async: Notify::new(),
        })
    }

    /// The gate every loader uses unless its options name another (default limit 2).
    pub fn global() -> Arc<Self> {
        static GLOBAL: OnceLock<Arc<LoadGate>> = OnceLock::new();
        GLOBAL.get_or_init(|| LoadGate::new(2)).clone()
    }

    /// Changes the limit; waiters re-check at once.
    pub fn set_limit(&self, limit: usize) {
        self.lock().limit = limit.max(1);
        self.freed.notify_all();
        self.freed_async.notify_waiters();
    }

    /// Loads holding a slot now.
    pub fn running(&self) -> usize {
        self.lock().running
    }

    /// A slot if one is free now.
    pub fn try_acquire(self: &Arc<Self>) -> Option<GatePermit> {
        let mut s = self.lock();
        (s.running < s.limit).then(|| {
            s.running += 1;
            GatePermit { gate: self.clone() }
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is two counters updated in one statement each; a panic elsewhere
        // cannot leave them half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a slot on this thread, for at most `within`, noticing a cancel within
    /// `CANCEL_POLL`.
    pub(crate) fn acquire_blocking(
        self: &Arc<Self>,
        within: Option<Duration>,
        cancelled: impl Fn() -> bool,
    ) -> Result<GatePermit, GateStop> {
        let start = std::time::Instant::now();
        let mut s = self.lock();
        loop {
            if cancelled() {
                return Err(GateStop::Cancelled);
            }
            if s.running < s.limit {
                s.running += 1;
                return Ok(GatePermit { gate: self.clone() });
            }
            let wait = match within {
                Some(w) => {
                    let left = w.saturating_sub(start.elapsed());
                    if left.is_zero() {
                        return Err(GateStop::TimedOut);
                    }
                    left.min(CANCEL_POLL)
                }
                None => CANCEL_POLL,
            };
            s = self
                .freed
                .wait_timeout(s, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits for a slot on tokio's clock (pausable in tests).
    pub(crate) async fn acquire_async(
        self: &Arc<Self>,
        within: Option<Duration>,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Result<GatePermit, GateStop> {
        let deadline = within.map(|w| tokio::time::Instant::now() + w);
        loop {
            // Register for the wake-up before checking, so a release in between is not lost.
            let freed = self.freed_async.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if cancel.is_cancelled() {
                return Err(GateStop::Cancelled);
            }
            if let Some(p) = self.try_acquire() {
                return Ok(p);
            }
            let expire = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = freed => {}
                _ = cancel.cancelled() => return Err(GateStop::Cancelled),
                _ = expire => return Err(GateStop::TimedOut),
            }
        }
    }
}
