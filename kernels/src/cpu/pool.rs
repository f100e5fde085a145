//! A small persistent thread pool: a GEMV takes ~200 µs, so spawning threads per call
//! (tens of µs each) would cost more than the split saves. Workers spin briefly for the
//! next job before parking, because back-to-back GEMVs arrive microseconds apart.
//!
//! Jobs split their work dynamically (each call takes pieces from a shared counter
//! until none are left), and the caller never waits for a worker that has not started
//! by the time the caller's own call ran out of work: on a busy machine a worker
//! waiting for a core used to stall every call by a scheduling delay (ops of 500+ µs
//! instead of 200); now the caller just does the pieces itself. A gate word makes
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
    /// work from a shared counter, so that the calls made cover all of it however
    /// many there are. A panic in a worker is re-raised here.
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
    use super::ThreadPool;
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
