//! The hosted model: one registry slot (single-flight loads, priorities, maintenance, swap),
//! load progress, and the blocking inference job.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gauntlet_engine::forward::{Control, ForwardError, ForwardPlan, seed_input};
use gauntlet_engine::load::{LoadMode, LoadOptions, LoadedModel, Loader, ProgressEvent};
use gauntlet_engine::preflight::{self, ResidentEstimate, SystemRoot};
use gauntlet_engine::registry::{
    AcquireOptions, BudgetFn, LoadContext, Maintenance, ModelRegistry, ModelSlot, Priority,
    RegistryError, SlotConfig,
};
use gauntlet_kernels::{CpuKernels, KernelError, KernelPath};

/// The slot id of the one model this server hosts.
const MODEL_ID: &str = "model";
/// Last errors kept for `/v1/status`.
const LAST_ERRORS: usize = 8;

/// Bytes done and total of the load in progress (lock-free, read by `/readyz`).
#[derive(Debug, Default)]
pub struct LoadProgress {
    /// File bytes made resident so far.
    pub bytes_done: AtomicU64,
    /// File length.
    pub bytes_total: AtomicU64,
}

/// What an inference asks for.
#[derive(Debug, Clone)]
pub enum Input {
    /// A deterministic vector from this seed.
    Seed(u64),
    /// The caller's own vector (must have the model's hidden width).
    Values(Vec<f32>),
}

/// A validated inference request.
#[derive(Debug, Clone)]
pub struct Job {
    /// The input.
    pub input: Input,
    /// Forward passes.
    pub steps: u32,
    /// Queue priority.
    pub priority: Priority,
}

/// The output vector's summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// Output length (the hidden width).
    pub len: usize,
    /// Mean value.
    pub mean: f32,
    /// Euclidean norm.
    pub l2: f32,
    /// Smallest value.
    pub min: f32,
    /// Largest value.
    pub max: f32,
    /// The first values, to compare runs by eye.
    pub head: Vec<f32>,
    /// FNV-1a over the output's bits: equal for equal outputs.
    pub checksum: String,
    /// Milliseconds waiting for a permit (and the model's load).
    pub queue_ms: f64,
    /// Milliseconds of forward passes.
    pub compute_ms: f64,
}

/// Why a job did not produce an output.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The registry refused or timed out.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The model or the request did not fit the pass.
    #[error(transparent)]
    Forward(#[from] ForwardError),
    /// The kernels could not start.
    #[error("kernels: {0}")]
    Kernel(#[from] KernelError),
}

/// The hosted model and everything about it that status pages show.
pub struct Host {
    _registry: ModelRegistry<LoadedModel>,
    /// The model's slot.
    pub slot: Arc<ModelSlot<LoadedModel>>,
    /// The load in progress.
    pub progress: Arc<LoadProgress>,
    /// Resident tensor bytes of the loaded model (0 before the first load).
    pub model_bytes: Arc<AtomicU64>,
    /// The model file now served.
    pub path: Mutex<PathBuf>,
    /// Maintenance reason, ETA and since when, for status pages.
    pub maintenance: Mutex<Option<(String, Option<u64>, Instant)>>,
    /// Recent failures, newest last.
    pub last_errors: Mutex<Vec<String>>,
    kernel_path: KernelPath,
    memcheck: bool,
    load_timeout: Duration,
}

impl Host {
    /// Registers `path` (nothing loads until [`Host::acquire`] or a request).
    pub fn new(
        path: &Path,
        kernel_path: KernelPath,
        memcheck: bool,
        load_timeout: Duration,
        max_users: usize,
    ) -> Result<Self, RegistryError> {
        let progress = Arc::new(LoadProgress::default());
        let model_bytes = Arc::new(AtomicU64::new(0));
        let registry = if memcheck {
            ModelRegistry::with_memory(
                Arc::new(|m: &LoadedModel| m.stats().tensor_bytes),
                swap_budget(model_bytes.clone()),
            )
        } else {
            ModelRegistry::new()
        };
        let loader = loader(
            path.to_path_buf(),
            progress.clone(),
            model_bytes.clone(),
            memcheck,
            load_timeout,
        );
        let slot = registry.register(
            MODEL_ID,
            loader,
            SlotConfig {
                max_users: max_users.max(1),
                access_timeout: load_timeout,
                ..SlotConfig::default()
            },
        )?;
        Ok(Host {
            _registry: registry,
            slot,
            progress,
            model_bytes,
            path: Mutex::new(path.to_path_buf()),
            maintenance: Mutex::new(None),
            last_errors: Mutex::new(Vec::new()),
            kernel_path,
            memcheck,
            load_timeout,
        })
    }

    /// Loads the model now (eager start-up) and releases the lease.
    pub fn load_now(&self) -> Result<(), RegistryError> {
        self.slot
            .acquire(AcquireOptions {
                priority: Priority::High,
                timeout: Some(self.load_timeout),
            })
            .map(drop)
    }

    /// The kernel path requests run on.
    pub fn kernel_path(&self) -> KernelPath {
        self.kernel_path
    }

    /// Records a failure for `/v1/status`.
    pub fn note_error(&self, e: String) {
        let mut errs = self.last_errors.lock().unwrap_or_else(|p| p.into_inner());
        if errs.len() >= LAST_ERRORS {
            errs.remove(0);
        }
        errs.push(e);
    }

    /// Enters or leaves maintenance.
    pub fn set_maintenance(&self, m: Option<(String, Option<u64>)>) {
        let mut g = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        self.slot
            .set_maintenance(m.as_ref().map(|(reason, eta)| Maintenance {
                reason: reason.clone(),
                eta: eta.map(|m| Duration::from_secs(m.saturating_mul(60))),
            }));
        *g = m.map(|(r, e)| (r, e, Instant::now()));
    }

    /// Replaces the model with the one at `path` while the old one keeps serving.
    pub fn swap(&self, path: &Path) -> Result<(u64, u64), RegistryError> {
        let new_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let loader = loader(
            path.to_path_buf(),
            self.progress.clone(),
            self.model_bytes.clone(),
            self.memcheck,
            self.load_timeout,
        );
        let r = self.slot.swap(loader, new_bytes, self.load_timeout)?;
        *self.path.lock().unwrap_or_else(|p| p.into_inner()) = path.to_path_buf();
        Ok((r.old_bytes, r.new_bytes))
    }

    /// Runs one job on this (blocking) thread: waits for a permit (loading the model if
    /// this is the first use) until the deadline, then runs the passes, checking
    /// `control` before every block.
    pub fn run_job(
        &self,
        job: &Job,
        control: &Control,
        on_permit: impl FnOnce(),
    ) -> Result<Summary, JobError> {
        let start = Instant::now();
        let timeout = control.deadline.map(|d| d.saturating_duration_since(start));
        let lease = self.slot.acquire(AcquireOptions {
            priority: job.priority,
            timeout,
        })?;
        on_permit();
        let queued = start.elapsed();
        let plan = ForwardPlan::new(&lease)?;
        let kernels = CpuKernels::new(self.kernel_path, 1)?;
        let input = match &job.input {
            Input::Seed(s) => seed_input(*s, plan.hidden()),
            Input::Values(v) => v.clone(),
        };
        let t = Instant::now();
        let out = plan.run(&kernels, &input, job.steps, control)?;
        Ok(summarize(&out, queued, t.elapsed()))
    }
}

/// The memory a swap may use for old and new model together: what the pre-flight allows
/// now (every cgroup level and `MemAvailable`, usage already subtracted) plus the bytes
/// the current model holds, since that usage is the old model's.
fn swap_budget(model_bytes: Arc<AtomicU64>) -> BudgetFn {
    Arc::new(move || {
        let nothing = ResidentEstimate::new(LoadMode::Mmap, [], 0);
        let allowed = preflight::check(&nothing, &SystemRoot::host()).allowed()?;
        Some(allowed.saturating_add(model_bytes.load(Ordering::Relaxed)))
    })
}

fn loader(
    path: PathBuf,
    progress: Arc<LoadProgress>,
    model_bytes: Arc<AtomicU64>,
    memcheck: bool,
    timeout: Duration,
) -> impl Fn(&LoadContext) -> Result<LoadedModel, String> + Send + Sync + 'static {
    move |ctx| {
        let p = progress.clone();
        let mut opts = LoadOptions::default()
            .timeout(timeout)
            .cancel_token(ctx.cancel_token())
            .progress_interval(Duration::from_millis(100))
            .progress(move |e: &ProgressEvent| {
                p.bytes_done.store(e.bytes_done, Ordering::Relaxed);
                p.bytes_total.store(e.bytes_total, Ordering::Relaxed);
            });
        if memcheck {
            opts = opts.memcheck(SystemRoot::host());
        }
        let model = Loader::new(opts)
            .load_path(&path)
            .map_err(|e| e.to_string())?;
        model_bytes.store(model.stats().tensor_bytes, Ordering::Relaxed);
        Ok(model)
    }
}

fn summarize(out: &[f32], queued: Duration, compute: Duration) -> Summary {
    let n = out.len().max(1) as f32;
    let checksum = out.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, v| {
        v.to_bits()
            .to_le_bytes()
            .iter()
            .fold(h, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
    });
    Summary {
        len: out.len(),
        mean: out.iter().sum::<f32>() / n,
        l2: out.iter().map(|v| v * v).sum::<f32>().sqrt(),
        min: out.iter().copied().fold(f32::INFINITY, f32::min),
        max: out.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        head: out.iter().take(8).copied().collect(),
        checksum: format!("{checksum:016x}"),
        queue_ms: queued.as_secs_f64() * 1e3,
        compute_ms: compute.as_secs_f64() * 1e3,
    }
}
