//! A small persistent thread pool: a GEMV takes ~200 µs, so spawning threads per call
//! (tens of µs each) would cost more than the split saves. Workers spin briefly for the
//! next job before parking, because back-to-back GEMVs arrive microseconds apart.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle worker polls for the next job before parking on the condvar.
const SPIN: Duration = Duration::from_micros(200);

type Job = &'static (dyn Fn(usize) + Sync);

struct Shared {
    job: Mutex<Option<Job>>,
    generation: AtomicU64,
    wake: Condvar,
    remaining: AtomicUsize,
    done_lock: Mutex<()>,
    done: Condvar,
    panicked: AtomicBool,
    shutdown: AtomicBool,
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
            remaining: AtomicUsize::new(0),
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

    /// Runs `f(0..threads)` with `f(0)` on the caller; returns when every call returned.
    /// A panic in a worker is re-raised here.
    pub(crate) fn run(&self, f: &(dyn Fn(usize) + Sync)) {
        if self.workers.is_empty() {
            f(0);
            return;
        }
        // SAFETY: the reference is only used by workers between the generation bump
        // below and their decrement of `remaining`; this function does not return (or
        // unwind) before `remaining` reaches zero, so `f` outlives every use.
        let job: Job = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), Job>(f) };
        self.shared
            .remaining
            .store(self.workers.len(), Ordering::SeqCst);
        {
            let mut slot = self.shared.job.lock().unwrap_or_else(|e| e.into_inner());
            *slot = Some(job);
            self.shared.generation.fetch_add(1, Ordering::SeqCst);
        }
        self.shared.wake.notify_all();
        let own = catch_unwind(AssertUnwindSafe(|| f(0)));
        self.wait_done();
        *self.shared.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if let Err(payload) = own {
            std::panic::resume_unwind(payload);
        }
        if self.shared.panicked.swap(false, Ordering::SeqCst) {
            panic!("a kernel worker thread panicked");
        }
    }

    fn wait_done(&self) {
        let start = Instant::now();
        while self.shared.remaining.load(Ordering::Acquire) != 0 {
            if start.elapsed() > SPIN {
                let mut guard = self
                    .shared
                    .done_lock
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                while self.shared.remaining.load(Ordering::Acquire) != 0 {
                    // Bounded wait: re-check periodically in case a notify raced the check.
                    guard = self
                        .shared
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
        if let Some(job) = job
            && catch_unwind(AssertUnwindSafe(|| job(id))).is_err()
        {
            shared.panicked.store(true, Ordering::SeqCst);
        }
        if shared.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _guard = shared.done_lock.lock().unwrap_or_else(|e| e.into_inner());
            shared.done.notify_all();
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
