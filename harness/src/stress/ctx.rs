//! What a stress task sees: its ids, a seeded random source, jitter, breadcrumbs, gauges.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use super::monitor::Board;

/// SplitMix64: tiny, fast and fully determined by its seed, which is all jitter needs.
#[derive(Debug, Clone)]
pub struct SeededRng(u64);

impl SeededRng {
    /// A generator for one (seed, task, iteration): the same triple always yields the same stream,
    /// whatever order the scheduler runs tasks in.
    pub fn for_iteration(seed: u64, task: usize, iteration: u64) -> Self {
        let mut r = SeededRng(seed ^ 0x9E37_79B9_7F4A_7C15);
        let a = r.next_u64() ^ (task as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let mut r = SeededRng(a);
        SeededRng(r.next_u64() ^ iteration.wrapping_mul(0x94D0_49BB_1331_11EB))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A duration uniformly in `[0, max]` (microsecond steps).
    pub fn duration_up_to(&mut self, max: Duration) -> Duration {
        let us = max.as_micros() as u64;
        if us == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros(self.next_u64() % (us + 1))
    }
}

/// The jitter planned for one iteration of one task under `seed`.
pub(crate) fn planned_jitter(seed: u64, task: usize, iteration: u64, max: Duration) -> Duration {
    SeededRng::for_iteration(seed, task, iteration).duration_up_to(max)
}

/// Handed to the body of every iteration.
#[derive(Debug)]
pub struct StressCtx {
    pub(crate) task: usize,
    pub(crate) iteration: u64,
    pub(crate) seed: u64,
    pub(crate) jitter_max: Duration,
    pub(crate) rng: SeededRng,
    pub(crate) board: Arc<Board>,
}

/// Salt separating the body's random stream from the jitter stream of the same iteration.
const BODY_SALT: u64 = 0xA076_1D64_78BD_642F;

impl StressCtx {
    /// What iteration `iteration` of `task` sees, on either runner: its own random
    /// stream, salted apart from the jitter planned for the same iteration.
    pub(crate) fn for_iteration(
        task: usize,
        iteration: u64,
        seed: u64,
        jitter_max: Duration,
        board: Arc<Board>,
    ) -> Self {
        StressCtx {
            task,
            iteration,
            seed,
            jitter_max,
            rng: SeededRng::for_iteration(seed ^ BODY_SALT, task, iteration),
            board,
        }
    }

    /// This task's index, `0..concurrency`.
    pub fn task(&self) -> usize {
        self.task
    }

    /// This iteration's global index, `0..iterations`.
    pub fn iteration(&self) -> u64 {
        self.iteration
    }

    /// The run's seed (print it with a failure so the run can be replayed).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Random numbers determined by (seed, task, iteration).
    pub fn rng(&mut self) -> &mut SeededRng {
        &mut self.rng
    }

    /// The jitter that was applied before this iteration's body (same for the same seed).
    pub fn applied_jitter(&self) -> Duration {
        planned_jitter(self.seed, self.task, self.iteration, self.jitter_max)
    }

    /// A further seeded delay in `[0, jitter max]`, to perturb interleavings inside the body.
    pub fn jitter_delay(&mut self) -> Duration {
        let max = self.jitter_max;
        self.rng.duration_up_to(max)
    }

    /// Sleeps (blocking this thread) for [`StressCtx::jitter_delay`]; for the OS-thread runner.
    pub fn jitter(&mut self) {
        let d = self.jitter_delay();
        if !d.is_zero() {
            std::thread::sleep(d);
        }
    }

    /// Sleeps on tokio's clock for [`StressCtx::jitter_delay`]; for the tokio runner.
    pub async fn jitter_async(&mut self) {
        let d = self.jitter_delay();
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }

    /// Records where the task is; counts as progress, and is what a stuck report shows.
    pub fn breadcrumb(&self, at: impl Into<String>) {
        self.board.breadcrumb(self.task, at.into());
    }

    /// Counts this task into the run's concurrency gauge while the guard lives; the report's
    /// `max_concurrency` is the highest count seen. Hold it inside the section whose
    /// concurrency is under test (e.g. while a semaphore permit is held).
    pub fn concurrent(&self) -> ConcurrencyGuard {
        ConcurrencyGuard::enter(self.board.clone())
    }
}

/// Keeps its task counted in the concurrency gauge until dropped.
#[derive(Debug)]
pub struct ConcurrencyGuard(Arc<Board>);

impl ConcurrencyGuard {
    fn enter(board: Arc<Board>) -> Self {
        let now = board.gauge.fetch_add(1, Ordering::SeqCst) + 1;
        board.gauge_max.fetch_max(now, Ordering::SeqCst);
        board.gauge_used.store(1, Ordering::Relaxed);
        ConcurrencyGuard(board)
    }
}

impl Drop for ConcurrencyGuard {
    fn drop(&mut self) {
        self.0.gauge.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_task_iteration_gives_the_same_stream() {
        let a: Vec<u64> = (0..8)
            .map(|_| SeededRng::for_iteration(7, 3, 11).next_u64())
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut x = SeededRng::for_iteration(7, 3, 11);
        let mut y = SeededRng::for_iteration(7, 3, 12);
        assert_ne!(x.next_u64(), y.next_u64(), "iterations differ");
        let mut z = SeededRng::for_iteration(8, 3, 11);
        assert_ne!(
            SeededRng::for_iteration(7, 3, 11).next_u64(),
            z.next_u64(),
            "seeds differ"
        );
    }

    #[test]
    fn durations_stay_within_the_bound_and_zero_max_is_zero() {
        let mut r = SeededRng::for_iteration(1, 0, 0);
        for _ in 0..1000 {
            assert!(r.duration_up_to(Duration::from_millis(3)) <= Duration::from_millis(3));
        }
        assert_eq!(r.duration_up_to(Duration::ZERO), Duration::ZERO);
    }
}
