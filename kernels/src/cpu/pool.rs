//! A small persistent thread pool: a GEMV takes ~200 µs, so spawning threads per call
//! (tens of µs each) would cost more than the split saves. Workers spin briefly for the
//! next job before parking, because back-to-back GEMVs arrive microseconds apart.
//!
//! Jobs split their work dynamically (each call takes pieces until none are left:
//! its own run first, then the others', with [`Pieces`]), and the caller never waits
//! for a worker that has not started by the time the caller's own call ran out of
//! work: on a busy machine a worker waiting for a core used to stall every call by a
//! scheduling delay (ops of 500+ µs instead of 200); now the caller just does the
//! pieces itself. A gate word makes
//! "started" exact: a worker enters only while the gate is open for its job's
//! generation, and the caller closes it, learning how many entered, before waiting
//! for exactly those.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle worker polls for the next job before parking on the condvar.
const SPIN: Duration = Duration::from_micros(200);

/// Gate layout: generation in the high 32 bits, closed flag, entered count below.
const GEN_SHIFT: u32 = 32;
const CLOSED: u64 = 1 << 31;
const COUNT: u64 = CLOSED - 1;

type Job = &'static (dyn Fn(usize) + Sync);

struct Shared {
    job: Mutex<Option<Job>>,
    generation: AtomicU64,
    wake: Condvar,
    /// `generation << 32 | closed | entered` for the current job.
    gate: AtomicU64,
    /// Workers that entered the current job and returned from it.
    exited: AtomicUsize,
    done_lock: Mutex<()>,
    done: Condvar,
    panicked: AtomicBool,
    shutdown: AtomicBool,
}

impl Shared {
    /// Enters job `generation` unless its caller already closed the gate.
    fn enter(&self, generation: u64) -> bool {
        let mut gate = self.gate.load(Ordering::Acquire);
        loop {
            if gate >> GEN_SHIFT != generation & 0xffff_ffff || gate & CLOSED != 0 {
                return false;
            }
            match self.gate.compare_exchange_weak(
                gate,
                gate + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => gate = now,
            }
        }
    }
}

/// `threads − 1` workers plus the calling thread.
pub(crate) struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl ThreadPool {
    pub(crate) fn new(threads: usize) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            job: Mutex::new(None),
            generation: AtomicU64::new(0),
            wake: Condvar::new(),
            gate: AtomicU64::new(CLOSED),
            exited: AtomicUsize::new(0),
            done_lock: Mutex::new(()),
            done: Condvar::new(),
            panicked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
        });
        let mut pool = Self {
            shared,
            workers: Vec::new(),
        };
        for id in 1..threads.max(1) {
            let shared = Arc::clone(&pool.shared);
            // On error `pool` drops here, which stops the workers already started.
            let handle = std::thread::Builder::new()
                .name(format!("gauntlet-kernel-{id}"))
                .spawn(move || worker(&shared, id))?;
            pool.workers.push(handle);
        }
        Ok(pool)
    }

    pub(crate) fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `f(0)` on the caller and `f(id)` on each worker that starts before `f(0)`
    /// returns; returns when every call that started has returned. `f` must take its
    /// work from shared state (a counter, [`Pieces`]), so that the calls made cover all
    /// of it however many there are. A panic in a worker is re-raised here.
    pub(crate) fn run(&self, f: &(dyn Fn(usize) + Sync)) {
        if self.workers.is_empty() {
            f(0);
            return;
        }
        // SAFETY: a worker only calls the job after entering the gate for this
        // generation, and this function does not return (or unwind) before it has
        // closed the gate and seen every entered worker exit, so `f` outlives every use.
        let job: Job = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), Job>(f) };
        {
            let mut slot = self.shared.job.lock().unwrap_or_else(|e| e.into_inner());
            *slot = Some(job);
            let generation = self.shared.generation.load(Ordering::Relaxed) + 1;
            self.shared.exited.store(0, Ordering::Relaxed);
            self.shared
                .gate
                .store((generation & 0xffff_ffff) << GEN_SHIFT, Ordering::Release);
            self.shared.generation.store(generation, Ordering::Release);
        }
        self.shared.wake.notify_all();
        let own = catch_unwind(AssertUnwindSafe(|| f(0)));
        let entered = (self.shared.gate.fetch_or(CLOSED, Ordering::AcqRel) & COUNT) as usize;
        self.wait_exited(entered);
        *self.shared.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if let Err(payload) = own {
            std::panic::resume_unwind(payload);
        }
        if self.shared.panicked.swap(false, Ordering::SeqCst) {
            panic!("a kernel worker thread panicked");
        }
    }

    /// Waits until `entered` workers have returned from the current job: spinning
    /// first (they are usually microseconds behind), then on the condvar with a
    /// bounded wait that re-checks in case a notify raced the check.
    fn wait_exited(&self, entered: usize) {
        let shared = &self.shared;
        let start = Instant::now();
        while shared.exited.load(Ordering::Acquire) < entered {
            if start.elapsed() > SPIN {
                let mut guard = shared.done_lock.lock().unwrap_or_else(|e| e.into_inner());
                while shared.exited.load(Ordering::Acquire) < entered {
                    guard = shared
                        .done
                        .wait_timeout(guard, Duration::from_millis(10))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                return;
            }
            std::hint::spin_loop();
        }
    }
}

fn worker(shared: &Shared, id: usize) {
    let mut seen = 0u64;
    loop {
        let start = Instant::now();
        while shared.generation.load(Ordering::Acquire) == seen
            && !shared.shutdown.load(Ordering::Acquire)
        {
            if start.elapsed() > SPIN {
                let mut slot = shared.job.lock().unwrap_or_else(|e| e.into_inner());
                while shared.generation.load(Ordering::Acquire) == seen
                    && !shared.shutdown.load(Ordering::Acquire)
                {
                    slot = shared.wake.wait(slot).unwrap_or_else(|e| e.into_inner());
                }
                break;
            }
            std::hint::spin_loop();
        }
        if shared.shutdown.load(Ordering::Acquire) {
            return;
        }
        let job = {
            let slot = shared.job.lock().unwrap_or_else(|e| e.into_inner());
            seen = shared.generation.load(Ordering::Acquire);
            *slot
        };
        // A worker that comes late finds the gate closed (or a newer generation)
        // and leaves the job alone: its caller may already have returned.
        let Some(job) = job else { continue };
        if !shared.enter(seen) {
            continue;
        }
        if catch_unwind(AssertUnwindSafe(|| job(id))).is_err() {
            shared.panicked.store(true, Ordering::SeqCst);
        }
        shared.exited.fetch_add(1, Ordering::AcqRel);
        let _guard = shared.done_lock.lock().unwrap_or_else(|e| e.into_inner());
        shared.done.notify_all();
    }
}

/// Pieces `0..count` of one job, split into one contiguous run per thread id.
///
/// A thread takes its own run's pieces in ascending order, then takes pieces from the
/// back of whichever run has the most left. Ascending through one run keeps each
/// thread's reads one stream from piece to piece, so the kernels' prefetches that
/// run past a piece's end fetch the piece that thread takes next. With one shared
/// counter the threads alternate pieces: each piece then started a new stream whose
/// first prefetch distance was read unprefetched, and ran its last one into the other
/// thread's piece. Cold, 2 threads, 16 pieces, interleaved against the shared counter
/// on the Zen 4 runner: TQ2_0 2560×2560 67–89 → 56–62 µs, TQ1_0 6912×2560 152–156 →
/// 126–144 µs, the read baseline (split the same way) a few % faster too. Stealing
/// from the back keeps the owner's stream whole, and a thread that never starts
/// leaves its whole run to the others, piece by piece.
pub(crate) struct Pieces {
    /// Per run: `front << 32 | back`, its pieces not taken yet being `front..back`.
    runs: Vec<AtomicU64>,
}

impl Pieces {
    /// `count` pieces in `threads` runs whose lengths differ by at most one. `count`
    /// must fit in 32 bits (the kernels make about eight pieces per thread).
    pub(crate) fn new(count: usize, threads: usize) -> Self {
        let count = u32::try_from(count).expect("piece count fits in 32 bits") as u64;
        let threads = threads.max(1) as u64;
        let runs = (0..threads)
            .map(|t| {
                let bound = |t: u64| t * count / threads;
                AtomicU64::new(bound(t) << 32 | bound(t + 1))
            })
            .collect();
        Pieces { runs }
    }

    /// The next piece for thread `id`: its own run's front, else another run's back;
    /// `None` when every piece is taken.
    pub(crate) fn next(&self, id: usize) -> Option<usize> {
        if let Some(own) = self.runs.get(id) {
            let mut run = own.load(Ordering::Relaxed);
            while run >> 32 < run & 0xffff_ffff {
                match own.compare_exchange_weak(
                    run,
                    run + (1 << 32),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Some((run >> 32) as usize),
                    Err(now) => run = now,
                }
            }
        }
        loop {
            let left = |run: u64| (run & 0xffff_ffff).saturating_sub(run >> 32);
            let victim = self
                .runs
                .iter()
                .max_by_key(|r| left(r.load(Ordering::Relaxed)))?;
            let mut run = victim.load(Ordering::Relaxed);
            if left(run) == 0 {
                return None;
            }
            while left(run) > 0 {
                match victim.compare_exchange_weak(
                    run,
                    run - 1,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Some((run & 0xffff_ffff) as usize - 1),
                    Err(now) => run = now,
                }
            }
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        {
            let _slot = self.shared.job.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.shutdown.store(true, Ordering::SeqCst);
        }
        self.shared.wake.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Pieces, ThreadPool};
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn dynamic_jobs_cover_all_work_whoever_takes_it() {
        let pool = ThreadPool::new(3).expect("spawn");
        for round in 0..200 {
            let next = AtomicUsize::new(0);
            let done = AtomicUsize::new(0);
            let pieces = 1 + round % 17;
            pool.run(&|_| {
                while next.fetch_add(1, Ordering::Relaxed) < pieces {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
            assert_eq!(done.load(Ordering::Relaxed), pieces, "round {round}");
        }
    }

    #[test]
    fn each_thread_takes_its_own_run_in_order_then_steals_from_the_back() {
        let pieces = Pieces::new(16, 2);
        assert_eq!(pieces.next(1), Some(8), "thread 1's run starts halfway");
        let own: Vec<usize> = (0..8).map_while(|_| pieces.next(0)).collect();
        assert_eq!(own, (0..8).collect::<Vec<_>>(), "thread 0's run, in order");
        // Thread 0 is done with its run: it steals thread 1's last pieces, which
        // thread 1 then no longer gets; thread 1 goes on from its front.
        assert_eq!(pieces.next(0), Some(15));
        assert_eq!(pieces.next(0), Some(14));
        assert_eq!(pieces.next(1), Some(9));
        let rest: Vec<usize> = std::iter::from_fn(|| pieces.next(1)).collect();
        assert_eq!(rest, vec![10, 11, 12, 13]);
        assert_eq!(pieces.next(0), None);
        assert_eq!(pieces.next(1), None);
    }

    #[test]
    fn one_thread_alone_takes_every_run() {
        // A worker that never starts: the caller must take its whole run too.
        for (count, threads) in [(0, 1), (1, 3), (5, 2), (17, 4), (3, 8)] {
            let pieces = Pieces::new(count, threads);
            let mut taken: Vec<usize> = std::iter::from_fn(|| pieces.next(0)).collect();
            taken.sort_unstable();
            assert_eq!(
                taken,
                (0..count).collect::<Vec<_>>(),
                "{count} pieces, {threads} runs"
            );
        }
    }

    #[test]
    fn concurrent_threads_take_every_piece_exactly_once() {
        let pool = ThreadPool::new(3).expect("spawn");
        for round in 0..300 {
            let count = round % 41;
            // Runs for fewer threads than the pool has (a thread without a run only
            // steals) and for more (runs no thread owns are stolen).
            let runs = 1 + round % 5;
            let pieces = Pieces::new(count, runs);
            let hits: Vec<AtomicUsize> = (0..count).map(|_| AtomicUsize::new(0)).collect();
            pool.run(&|id| {
                while let Some(at) = pieces.next(id) {
                    hits[at].fetch_add(1, Ordering::Relaxed);
                }
            });
            for (at, h) in hits.iter().enumerate() {
                assert_eq!(h.load(Ordering::Relaxed), 1, "round {round}: piece {at}");
            }
        }
    }

    #[test]
    fn a_worker_panic_is_raised_on_the_caller() {
        let pool = ThreadPool::new(2).expect("spawn");
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // Only worker 1 panics; the caller gives it up to 50 ms to enter, and
            // the rounds repeat in case it was not scheduled in time.
            for _ in 0..100 {
                let entered = AtomicUsize::new(0);
                pool.run(&|id| {
                    if id == 1 {
                        entered.store(1, Ordering::SeqCst);
                        panic!("worker failure");
                    }
                    let start = std::time::Instant::now();
                    while entered.load(Ordering::SeqCst) == 0
                        && start.elapsed() < std::time::Duration::from_millis(50)
                    {
                        std::hint::spin_loop();
                    }
                });
            }
        }));
        assert!(caught.is_err(), "the worker's panic reached the caller");
        // The pool still works afterwards.
        let hits = AtomicUsize::new(0);
        pool.run(&|_| {
            hits.fetch_add(1, Ordering::Relaxed);
        });
        assert!(hits.load(Ordering::Relaxed) >= 1);
    }
}
