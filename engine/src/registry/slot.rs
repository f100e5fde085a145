//! One model id: its cell, its single flight, its gate, maintenance and swap.

use std::{
    ops::Deref,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;

use super::{
    AcquireOptions, BudgetFn, LoadContext, LoadFn, Maintenance, RegistryError, SizeFn, SlotConfig,
    Stats,
    cell::SwapCell,
    flight::{AttemptError, Flight, Wait},
    gate::{Gate, Permit},
};

/// A model in use; the access permit is returned and the model possibly freed (after a swap)
/// when it drops.
pub struct Lease<M> {
    model: Arc<M>,
    _permit: Permit,
}

impl<M> Lease<M> {
    /// The shared model.
    pub fn model(&self) -> &Arc<M> {
        &self.model
    }
}

impl<M> Deref for Lease<M> {
    type Target = M;
    fn deref(&self) -> &M {
        &self.model
    }
}

/// What a completed swap replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwapReport {
    /// Resident size of the model that was replaced (0 when none was loaded).
    pub old_bytes: u64,
    /// Resident size of the new model.
    pub new_bytes: u64,
}

/// One registered model.
pub struct ModelSlot<M> {
    id: String,
    cell: Arc<SwapCell<M>>,
    flight: Arc<Flight>,
    loader: Mutex<LoadFn<M>>,
    gate: Arc<Gate>,
    config: SlotConfig,
    maintenance: Mutex<Option<(Maintenance, Instant)>>,
    in_maintenance: AtomicBool,
    swapping: AtomicBool,
    /// `CLOCK_MONOTONIC_COARSE` nanoseconds of the last acquisition, plus one (0 = never).
    last_access: AtomicU64,
    size: SizeFn<M>,
    budget: BudgetFn,
}

impl<M: Send + Sync + 'static> ModelSlot<M> {
    pub(crate) fn new(
        id: &str,
        loader: LoadFn<M>,
        config: SlotConfig,
        size: SizeFn<M>,
        budget: BudgetFn,
    ) -> Self {
        ModelSlot {
            id: id.to_string(),
            cell: Arc::new(SwapCell::new()),
            flight: Arc::new(Flight::default()),
            loader: Mutex::new(loader),
            gate: Arc::new(Gate::new(config.max_users, config.aging)),
            config,
            maintenance: Mutex::new(None),
            in_maintenance: AtomicBool::new(false),
            swapping: AtomicBool::new(false),
            last_access: AtomicU64::new(0),
            size,
            budget,
        }
    }

    /// The model's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Takes an access permit (by priority, within the timeout) and the model, loading it on
    /// first use. Once loaded this is lock-free: a compare-and-swap for the permit and a pinned
    /// read of the model.
    pub fn acquire(&self, opts: AcquireOptions) -> Result<Lease<M>, RegistryError> {
        if self.in_maintenance.load(Ordering::Acquire)
            && let Some((m, since)) = self
                .maintenance
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        {
            return Err(RegistryError::Unavailable {
                id: self.id.clone(),
                reason: m.reason,
                eta: m.eta.map(|e| e.saturating_sub(since.elapsed())),
            });
        }
        let timeout = opts.timeout.unwrap_or(self.config.access_timeout);
        // The fast path reads no clock; only a caller that has to wait needs a deadline.
        let mut start = None;
        let permit = match self.gate.try_fast() {
            Some(p) => p,
            None => self.wait_for_permit(opts, timeout, *start.insert(Instant::now()))?,
        };
        let model = match self.cell.load() {
            Some(m) => m,
            None => {
                let start = *start.get_or_insert_with(Instant::now);
                let loader = self
                    .loader
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                self.flight
                    .get(&self.cell, &loader, start + timeout)
                    .map_err(|w| self.wait_error(w, start))?
            }
        };
        self.last_access
            .store(coarse_now_ns().saturating_add(1), Ordering::Relaxed);
        Ok(Lease {
            model,
            _permit: permit,
        })
    }

    fn wait_for_permit(
        &self,
        opts: AcquireOptions,
        timeout: Duration,
        start: Instant,
    ) -> Result<Permit, RegistryError> {
        let deadline = start + timeout;
        self.gate
            .acquire(opts.priority, deadline)
            .ok_or_else(|| RegistryError::AccessTimeout {
                id: self.id.clone(),
                waited: start.elapsed(),
                queued: self.gate.queued(),
                limit: self.config.max_users,
            })
    }

    fn wait_error(&self, w: Wait, start: Instant) -> RegistryError {
        let id = self.id.clone();
        match w {
            Wait::TimedOut => RegistryError::LoadTimedOut {
                id,
                waited: start.elapsed(),
            },
            Wait::Failed(AttemptError::Cancelled) => RegistryError::LoadCancelled { id },
            Wait::Failed(AttemptError::Failed(reason) | AttemptError::NoThread(reason)) => {
                RegistryError::LoadFailed { id, reason }
            }
            Wait::Failed(AttemptError::Panicked(msg)) => RegistryError::LoadFailed {
                id,
                reason: format!("loader panicked: {msg}"),
            },
        }
    }

    /// Cancels the running load attempt (its waiters get `LoadCancelled`; the cell stays empty
    /// and the next acquisition starts over). Returns whether a load was running.
    pub fn cancel_loading(&self) -> bool {
        self.flight.cancel()
    }

    /// Counters for dashboards and tests.
    pub fn stats(&self) -> Stats {
        let la = self.last_access.load(Ordering::Relaxed);
        Stats {
            is_loading: self.flight.is_loading(),
            swapping: self.swapping.load(Ordering::Relaxed),
            queued: self.gate.queued(),
            active: self.gate.active(),
            loads_started: self.flight.started.load(Ordering::Relaxed),
            loads_failed: self.flight.failed.load(Ordering::Relaxed),
            last_access: (la > 0)
                .then(|| Duration::from_nanos(coarse_now_ns().saturating_sub(la - 1))),
        }
    }

    /// Enters (`Some`) or leaves (`None`) maintenance mode: new acquisitions get
    /// `Unavailable { reason, eta }`; leases already held are unaffected.
    pub fn set_maintenance(&self, m: Option<Maintenance>) {
        let mut g = self.maintenance.lock().unwrap_or_else(|e| e.into_inner());
        self.in_maintenance.store(m.is_some(), Ordering::Release);
        *g = m.map(|m| (m, Instant::now()));
    }

    /// Whether a model is loaded now.
    pub fn is_loaded(&self) -> bool {
        self.cell.load().is_some()
    }

    /// Loads a replacement in the background while the current model keeps serving, then
    /// switches atomically; the old model is freed when its last lease drops. Refused up front
    /// when the current model plus `new_bytes` exceed the memory budget, since both are resident
    /// during the swap. On failure or timeout the old model keeps serving. Later reloads use
    /// `loader`.
    pub fn swap(
        &self,
        loader: impl Fn(&LoadContext) -> Result<M, String> + Send + Sync + 'static,
        new_bytes: u64,
        timeout: Duration,
    ) -> Result<SwapReport, RegistryError> {
        let id = self.id.clone();
        if self.swapping.swap(true, Ordering::AcqRel) {
            return Err(RegistryError::SwapInProgress { id });
        }
        struct Reset<'a>(&'a AtomicBool);
        impl Drop for Reset<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _reset = Reset(&self.swapping);
        let old_bytes = self.cell.load().map_or(0, |m| (self.size)(&m));
        if let Some(budget) = (self.budget)()
            && old_bytes.saturating_add(new_bytes) > budget
        {
            return Err(RegistryError::SwapRefused {
                id,
                old_bytes,
                new_bytes,
                budget,
            });
        }
        let loader: LoadFn<M> = Arc::new(loader);
        let token = CancellationToken::new();
        let (tx, rx) = mpsc::channel();
        let (l, t) = (loader.clone(), token.clone());
        std::thread::Builder::new()
            .name(format!("gauntlet-registry-swap-{id}"))
            .spawn(move || {
                let ctx = LoadContext { cancel: t };
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| l(&ctx)));
                let _ = tx.send(r.unwrap_or_else(|_| Err("loader panicked".into())));
            })
            .map_err(|e| RegistryError::SwapFailed {
                id: id.clone(),
                reason: e.to_string(),
            })?;
        let new = match rx.recv_timeout(timeout) {
            Ok(Ok(m)) => Arc::new(m),
            Ok(Err(reason)) => return Err(RegistryError::SwapFailed { id, reason }),
            Err(_) => {
                token.cancel();
                return Err(RegistryError::SwapFailed {
                    id,
                    reason: format!("replacement not loaded within {timeout:?}; cancelled"),
                });
            }
        };
        let new_bytes = (self.size)(&new);
        *self.loader.lock().unwrap_or_else(|e| e.into_inner()) = loader;
        drop(self.cell.store(Some(new)));
        Ok(SwapReport {
            old_bytes,
            new_bytes,
        })
    }
}

/// Monotonic time at tick resolution (1–4 ms): the fast path records the last access with it
/// because it costs a few nanoseconds where a precise clock read costs tens.
fn coarse_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_MONOTONIC_COARSE exists on every Linux.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) } != 0 {
        return 0;
    }
    (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64
}
