//! The shared progress board and the watchdog that reads it.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use super::StuckTask;

/// One task's progress, written by the task, read by the watchdog.
#[derive(Debug, Default)]
struct Slot {
    ticks: AtomicU64,
    iteration: AtomicU64,
    done: AtomicBool,
    last: Mutex<Option<String>>,
}

/// Progress of every task plus the concurrency gauges.
#[derive(Debug)]
pub(crate) struct Board {
    slots: Vec<Slot>,
    pub(crate) gauge: AtomicUsize,
    pub(crate) gauge_max: AtomicUsize,
    pub(crate) gauge_used: AtomicUsize,
    active: AtomicUsize,
    active_max: AtomicUsize,
}

impl Board {
    pub(crate) fn new(tasks: usize) -> Arc<Self> {
        Arc::new(Board {
            slots: (0..tasks).map(|_| Slot::default()).collect(),
            gauge: AtomicUsize::new(0),
            gauge_max: AtomicUsize::new(0),
            gauge_used: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            active_max: AtomicUsize::new(0),
        })
    }

    fn slot(&self, task: usize) -> Option<&Slot> {
        self.slots.get(task)
    }

    pub(crate) fn breadcrumb(&self, task: usize, at: String) {
        if let Some(s) = self.slot(task) {
            s.ticks.fetch_add(1, Ordering::Relaxed);
            // A poisoned lock only means another breadcrumb writer panicked; the text is still
            // the best we have.
            *s.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(at);
        }
    }

    pub(crate) fn last_breadcrumb(&self, task: usize) -> Option<String> {
        self.slot(task)?
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn begin(&self, task: usize, iteration: u64) {
        if let Some(s) = self.slot(task) {
            s.iteration.store(iteration, Ordering::Relaxed);
            s.ticks.fetch_add(1, Ordering::Relaxed);
        }
        let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.active_max.fetch_max(now, Ordering::SeqCst);
    }

    pub(crate) fn end(&self, task: usize) {
        if let Some(s) = self.slot(task) {
            s.ticks.fetch_add(1, Ordering::Relaxed);
        }
        self.active.fetch_sub(1, Ordering::SeqCst);
    }

    pub(crate) fn finish(&self, task: usize) {
        if let Some(s) = self.slot(task) {
            s.done.store(true, Ordering::SeqCst);
        }
    }

    pub(crate) fn iteration_of(&self, task: usize) -> u64 {
        self.slot(task)
            .map_or(0, |s| s.iteration.load(Ordering::Relaxed))
    }

    fn ticks(&self) -> Vec<u64> {
        self.slots
            .iter()
            .map(|s| s.ticks.load(Ordering::Relaxed))
            .collect()
    }

    /// (max in the user's gauge if it was used, max tasks inside an iteration body)
    pub(crate) fn concurrency(&self) -> (Option<usize>, usize) {
        let gauge = (self.gauge_used.load(Ordering::Relaxed) == 1)
            .then(|| self.gauge_max.load(Ordering::SeqCst));
        (gauge, self.active_max.load(Ordering::SeqCst))
    }

    /// Unfinished tasks whose tick count is what it was in `then`.
    fn stuck_since(&self, then: &[u64], stalled: Duration) -> Vec<StuckTask> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(i, s)| {
                !s.done.load(Ordering::SeqCst) && s.ticks.load(Ordering::Relaxed) == then[*i]
            })
            .map(|(i, s)| StuckTask {
                task: i,
                iteration: s.iteration.load(Ordering::Relaxed),
                last_breadcrumb: s.last.lock().unwrap_or_else(|e| e.into_inner()).clone(),
                stalled_for: stalled,
            })
            .collect()
    }

    fn all_done(&self) -> bool {
        self.slots.iter().all(|s| s.done.load(Ordering::SeqCst))
    }
}

/// Stops the watchdog thread when dropped.
pub(crate) struct Watchdog {
    stop: mpsc::Sender<()>,
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.stop.send(());
    }
}

/// Starts a thread that calls `on_stuck` once when no task made progress for `limit`.
///
/// A plain OS thread, so a task that blocks every runtime worker cannot silence it.
pub(crate) fn watch(
    board: Arc<Board>,
    limit: Duration,
    on_stuck: impl FnOnce(Vec<StuckTask>) + Send + 'static,
) -> Watchdog {
    let (stop, stopped) = mpsc::channel::<()>();
    let tick = (limit / 8).clamp(Duration::from_millis(1), Duration::from_millis(250));
    std::thread::Builder::new()
        .name("gauntlet-stress-watchdog".into())
        .spawn(move || {
            let mut last = board.ticks();
            let mut since = Instant::now();
            loop {
                match stopped.recv_timeout(tick) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
                if board.all_done() {
                    return;
                }
                let now = board.ticks();
                if now != last {
                    last = now;
                    since = Instant::now();
                } else if since.elapsed() >= limit {
                    on_stuck(board.stuck_since(&last, since.elapsed()));
                    return;
                }
            }
        })
        .map(|_| ())
        .unwrap_or_else(|e| {
            eprintln!("gauntlet stress: no watchdog thread ({e}); stalls will not be reported")
        });
    Watchdog { stop }
}
