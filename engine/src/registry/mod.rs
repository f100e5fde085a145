//! Models by id: single-flight loading, an access limit with priorities, maintenance mode and
//! hot swap.
//!
//! Failure stories this module exists to prevent: two concurrent first callers each loading
//! multi-GB weights (peak memory 2×, OOM kill) — loading is single-flight; a manager creating a
//! second "fallback" instance — a slot holds one model, and a swap is refused when old and new
//! together exceed the memory budget.
//!
//! The registry is generic over the model type, so it serves [`crate::load::LoadedModel`] and
//! test doubles alike; a loader is any `Fn(&LoadContext) -> Result<M, String>` and should pass
//! [`LoadContext::cancel_token`] to the engine's `LoadOptions::cancel_token`.
//!
//! ```
//! use std::time::Duration;
//! use gauntlet_engine::registry::{AcquireOptions, ModelRegistry, SlotConfig};
//!
//! let registry = ModelRegistry::<Vec<u8>>::new();
//! registry.register("tiny", |_ctx| Ok(vec![1, 2, 3]), SlotConfig::default()).unwrap();
//! let lease = registry.acquire("tiny", AcquireOptions::default()).unwrap();
//! assert_eq!(lease.len(), 3);
//! ```

mod cell;
mod flight;
mod gate;
mod slot;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio_util::sync::CancellationToken;

pub use slot::{Lease, ModelSlot, SwapReport};

/// A model loader.
pub type LoadFn<M> = Arc<dyn Fn(&LoadContext) -> Result<M, String> + Send + Sync>;

/// What a loader gets: the cancellation of its attempt.
#[derive(Debug, Clone)]
pub struct LoadContext {
    cancel: CancellationToken,
}

impl LoadContext {
    /// True once [`ModelSlot::cancel_loading`] was called for this attempt.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// The token to hand to the engine loader so cancellation stops the copy between chunks.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }
}

/// Who is asking; a higher level is served first when users queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    /// Test traffic (−1).
    Test,
    /// Ordinary requests (0).
    #[default]
    Normal,
    /// Urgent requests (1).
    High,
}

impl Priority {
    /// −1, 0 or 1.
    pub fn level(self) -> i64 {
        match self {
            Priority::Test => -1,
            Priority::Normal => 0,
            Priority::High => 1,
        }
    }
}

/// Per-model limits.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotConfig {
    /// Concurrent users at most.
    pub max_users: usize,
    /// How long an acquisition may wait (for a permit and for the load) by default.
    pub access_timeout: Duration,
    /// A queued request gains one priority level per this period waited, so low priority is not
    /// starved; zero disables aging.
    pub aging: Duration,
}

impl Default for SlotConfig {
    fn default() -> Self {
        SlotConfig {
            max_users: 64,
            access_timeout: Duration::from_secs(30),
            aging: Duration::from_secs(1),
        }
    }
}

/// One acquisition's wishes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AcquireOptions {
    /// Queue priority.
    pub priority: Priority,
    /// Overrides [`SlotConfig::access_timeout`] for this call.
    pub timeout: Option<Duration>,
}

/// Why new acquisitions are refused for a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maintenance {
    /// Shown to callers.
    pub reason: String,
    /// When it is expected to end, from when it was set.
    pub eta: Option<Duration>,
}

/// A slot's counters.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// A single-flight load is running.
    pub is_loading: bool,
    /// A hot swap is loading the replacement.
    pub swapping: bool,
    /// Requests waiting for a permit.
    pub queued: usize,
    /// Leases held.
    pub active: usize,
    /// Load attempts started (swaps not included).
    pub loads_started: u64,
    /// Load attempts that failed, panicked or were cancelled.
    pub loads_failed: u64,
    /// Time since the last successful acquisition, if any.
    pub last_access: Option<Duration>,
}

/// Registry errors; each names the model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RegistryError {
    /// No model with this id was registered.
    #[error("model {id:?} is not registered (register it before acquiring)")]
    UnknownModel {
        /// The id asked for.
        id: String,
    },
    /// The id is taken.
    #[error("model {id:?} is already registered")]
    Duplicate {
        /// The id.
        id: String,
    },
    /// The model is in maintenance mode.
    #[error("model {id:?} is unavailable: {reason}{}", eta.map(|e| format!(" (expected back in {e:?})")).unwrap_or_default())]
    Unavailable {
        /// The id.
        id: String,
        /// Why.
        reason: String,
        /// Expected duration.
        eta: Option<Duration>,
    },
    /// No permit became free in time.
    #[error(
        "model {id:?}: no access within {waited:?} ({queued} requests queued, {limit} users at most)"
    )]
    AccessTimeout {
        /// The id.
        id: String,
        /// How long this request waited.
        waited: Duration,
        /// Requests still queued.
        queued: usize,
        /// The access limit.
        limit: usize,
    },
    /// This caller's deadline passed while the shared load went on (it was not cancelled).
    #[error("model {id:?}: still loading after {waited:?}; the load continues for other callers")]
    LoadTimedOut {
        /// The id.
        id: String,
        /// How long this caller waited.
        waited: Duration,
    },
    /// The load attempt this caller waited for failed; the next caller retries.
    #[error("model {id:?}: load failed: {reason}")]
    LoadFailed {
        /// The id.
        id: String,
        /// The loader's error, or the panic message.
        reason: String,
    },
    /// The load was cancelled with `cancel_loading`.
    #[error("model {id:?}: load cancelled")]
    LoadCancelled {
        /// The id.
        id: String,
    },
    /// Old and new model together exceed the memory budget.
    #[error(
        "model {id:?}: swap refused: {old_bytes} B loaded + {new_bytes} B new > {budget} B budget"
    )]
    SwapRefused {
        /// The id.
        id: String,
        /// Resident size of the current model.
        old_bytes: u64,
        /// Expected resident size of the replacement.
        new_bytes: u64,
        /// The memory budget.
        budget: u64,
    },
    /// A swap is already running for this model.
    #[error("model {id:?}: a swap is already in progress")]
    SwapInProgress {
        /// The id.
        id: String,
    },
    /// The replacement did not load; the old model keeps serving.
    #[error("model {id:?}: swap failed, old model still serving: {reason}")]
    SwapFailed {
        /// The id.
        id: String,
        /// Why.
        reason: String,
    },
}

/// Resident size of a model, for the swap's memory check.
pub type SizeFn<M> = Arc<dyn Fn(&M) -> u64 + Send + Sync>;
/// The memory budget for models in bytes (`None`: unknown, no check).
pub type BudgetFn = Arc<dyn Fn() -> Option<u64> + Send + Sync>;

/// Models by id.
pub struct ModelRegistry<M> {
    slots: Mutex<HashMap<String, Arc<ModelSlot<M>>>>,
    size: SizeFn<M>,
    budget: BudgetFn,
}

impl<M: Send + Sync + 'static> Default for ModelRegistry<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: Send + Sync + 'static> ModelRegistry<M> {
    /// A registry with no memory budget (swaps are not size-checked).
    pub fn new() -> Self {
        Self::with_memory(Arc::new(|_| 0), Arc::new(|| None))
    }

    /// A registry whose swaps check `size(old) + expected new ≤ budget()`.
    pub fn with_memory(size: SizeFn<M>, budget: BudgetFn) -> Self {
        ModelRegistry {
            slots: Mutex::new(HashMap::new()),
            size,
            budget,
        }
    }

    /// Registers `id`; nothing is loaded until the first acquisition.
    pub fn register(
        &self,
        id: &str,
        loader: impl Fn(&LoadContext) -> Result<M, String> + Send + Sync + 'static,
        config: SlotConfig,
    ) -> Result<Arc<ModelSlot<M>>, RegistryError> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.contains_key(id) {
            return Err(RegistryError::Duplicate { id: id.into() });
        }
        let slot = Arc::new(ModelSlot::new(
            id,
            Arc::new(loader),
            config,
            self.size.clone(),
            self.budget.clone(),
        ));
        slots.insert(id.to_string(), slot.clone());
        Ok(slot)
    }

    /// The slot of `id`.
    pub fn slot(&self, id: &str) -> Result<Arc<ModelSlot<M>>, RegistryError> {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| RegistryError::UnknownModel { id: id.into() })
    }

    /// Acquires `id` (loading it on first use); see [`ModelSlot::acquire`].
    pub fn acquire(&self, id: &str, opts: AcquireOptions) -> Result<Lease<M>, RegistryError> {
        self.slot(id)?.acquire(opts)
    }
}
