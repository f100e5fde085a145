//! Seeded concurrency stress runs with a progress watchdog.
//!
//! [`Stress::new`]`(concurrency, iterations)` runs `iterations` calls of a body spread over
//! `concurrency` tasks — OS threads ([`Stress::run`]) or tokio tasks ([`Stress::run_async`]) —
//! with a seeded random delay before each call, and reports throughput, latency percentiles and
//! the highest concurrency seen. When no task makes progress (an iteration boundary or a
//! [`StressCtx::breadcrumb`]) for the watchdog period, the run fails naming each stuck task and
//! its last breadcrumb, and prints the seed; `GAUNTLET_STRESS_SEED=<seed>` replays the same
//! jitter. Iteration counts shrink tenfold under instrumentation (valgrind, Miri, sanitizers)
//! and grow tenfold under the nextest profile `stress`.
//!
//! ```
//! use std::{sync::atomic::{AtomicU64, Ordering}, time::Duration};
//! use gauntlet_harness::stress::Stress;
//!
//! static HITS: AtomicU64 = AtomicU64::new(0);
//! let report = Stress::new(4, 200)
//!     .seed(7)
//!     .jitter(Duration::from_micros(50))
//!     .watchdog(Duration::from_secs(5))
//!     .run(|ctx| {
//!         ctx.breadcrumb("counting");
//!         HITS.fetch_add(1, Ordering::Relaxed);
//!     });
//! assert_eq!(report.iterations, HITS.load(Ordering::Relaxed));
//! ```

mod ctx;
mod monitor;
mod on_threads;
mod on_tokio;
mod report;

use std::time::Duration;

pub use ctx::{ConcurrencyGuard, SeededRng, StressCtx};
pub use report::{StressError, StressReport, StuckTask};

/// Environment variable that fixes the seed (replays a failed run).
pub const SEED_ENV: &str = "GAUNTLET_STRESS_SEED";

/// A stress run's shape; build with [`Stress::new`], then call a `run` method.
#[derive(Debug, Clone)]
pub struct Stress {
    concurrency: usize,
    iterations: u64,
    seed: Option<u64>,
    jitter: Duration,
    watchdog: Duration,
}

impl Stress {
    /// `iterations` calls of the body (before scaling) spread over `concurrency` tasks
    /// (at least one).
    pub fn new(concurrency: usize, iterations: u64) -> Self {
        Stress {
            concurrency: concurrency.max(1),
            iterations,
            seed: None,
            jitter: Duration::ZERO,
            watchdog: Duration::from_secs(10),
        }
    }

    /// Fixes the seed (otherwise `GAUNTLET_STRESS_SEED`, else one derived from the clock).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Waits a seeded random time in `[0, max]` before each call.
    pub fn jitter(mut self, max: Duration) -> Self {
        self.jitter = max;
        self
    }

    /// Fails the run when no task progresses for `d` (default 10 s).
    pub fn watchdog(mut self, d: Duration) -> Self {
        self.watchdog = d;
        self
    }

    /// The jitter iteration `iteration` of `task` gets under `seed`: the whole sequence is a
    /// function of the seed, independent of scheduling.
    pub fn planned_jitter(&self, seed: u64, task: usize, iteration: u64) -> Duration {
        ctx::planned_jitter(seed, task, iteration, self.jitter)
    }

    /// The iteration count after scaling for this environment.
    pub fn effective_iterations(&self) -> u64 {
        let env = crate::env::Environment::detect();
        let profile = env.nextest.as_ref().and_then(|n| n.profile.as_deref());
        scale_iterations(self.iterations, env.instrumented() || cfg!(miri), profile)
    }

    /// Resolves the seed: `GAUNTLET_STRESS_SEED` wins (it replays a reported failure), then
    /// [`Stress::seed`], then the clock.
    fn resolve_seed(&self) -> Result<u64, StressError> {
        if let Ok(v) = std::env::var(SEED_ENV) {
            return v
                .trim()
                .parse()
                .map_err(|_| StressError::InvalidSeed { value: v });
        }
        Ok(self.seed.unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            SeededRng::for_iteration(t, std::process::id() as usize, 0).next_u64()
        }))
    }

    /// Runs on OS threads and returns the report, or the failure (stuck, panicked). After a
    /// stuck report the stuck threads are left behind (a thread cannot be killed); they end with
    /// the process.
    pub fn try_run<F>(self, body: F) -> Result<StressReport, StressError>
    where
        F: Fn(&mut StressCtx) + Send + Sync + 'static,
    {
        let seed = self.resolve_seed()?;
        on_threads::run(&self, seed, body).inspect_err(print_seed)
    }

    /// [`Stress::try_run`] that panics with the failure (for tests).
    pub fn run<F>(self, body: F) -> StressReport
    where
        F: Fn(&mut StressCtx) + Send + Sync + 'static,
    {
        self.try_run(body).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs as tokio tasks on the current runtime (use a multi-thread runtime for real
    /// parallelism). Stuck tasks are aborted before the error is returned.
    pub async fn try_run_async<F, Fut>(self, body: F) -> Result<StressReport, StressError>
    where
        F: Fn(StressCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let seed = self.resolve_seed()?;
        on_tokio::run(&self, seed, body)
            .await
            .inspect_err(print_seed)
    }

    /// [`Stress::try_run_async`] that panics with the failure (for tests).
    pub async fn run_async<F, Fut>(self, body: F) -> StressReport
    where
        F: Fn(StressCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.try_run_async(body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Which global iterations task `task` runs: `task, task + c, task + 2c, …` — fixed, so a
    /// seed replays the same (task, iteration) pairs.
    pub(crate) fn iterations_of(
        task: usize,
        concurrency: usize,
        total: u64,
    ) -> impl Iterator<Item = u64> {
        (task as u64..total).step_by(concurrency)
    }
}

fn print_seed(e: &StressError) {
    if let Some(seed) = e.seed() {
        eprintln!("gauntlet stress: failed with seed {seed}; replay with {SEED_ENV}={seed}");
    }
}

/// Tenfold fewer iterations when instrumented (at least one), tenfold more under the nextest
/// profile `stress`.
pub fn scale_iterations(base: u64, instrumented: bool, nextest_profile: Option<&str>) -> u64 {
    if instrumented {
        (base / 10).max(1)
    } else if nextest_profile == Some("stress") {
        base.saturating_mul(10)
    } else {
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iteration_scaling_table() {
        let cases = [
            ("plain", 100, false, None, 100),
            ("instrumented divides by ten", 100, true, None, 10),
            ("instrumented never reaches zero", 5, true, None, 1),
            (
                "stress profile multiplies by ten",
                100,
                false,
                Some("stress"),
                1000,
            ),
            (
                "instrumentation wins over stress",
                100,
                true,
                Some("stress"),
                10,
            ),
            ("other profiles leave it", 100, false, Some("ci"), 100),
            ("saturates", u64::MAX, false, Some("stress"), u64::MAX),
        ];
        for (name, base, instr, profile, want) in cases {
            assert_eq!(scale_iterations(base, instr, profile), want, "{name}");
        }
    }

    #[test]
    fn tasks_split_iterations_without_gaps_or_overlap() {
        let mut all: Vec<u64> = (0..3)
            .flat_map(|t| Stress::iterations_of(t, 3, 10))
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }
}
