//! At most N concurrent users; waiters served by priority, FIFO within a level, with aging.
//!
//! The uncontended path is one compare-and-swap on the free-permit count. Once anyone waits,
//! new arrivals queue too (no barging past waiters), and every released permit is handed to
//! the waiter with the highest *effective* priority: its level plus one per `aging` period
//! waited, so a test-priority request (−1) overtakes fresh normal ones after two periods.

use std::{
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicIsize, AtomicUsize, Ordering::SeqCst},
    },
    time::{Duration, Instant},
};

use super::Priority;

#[derive(Debug)]
struct Waiter {
    ticket: u64,
    level: i64,
    since: Instant,
    granted: bool,
}

#[derive(Debug, Default)]
struct Queue {
    waiters: Vec<Waiter>,
    next_ticket: u64,
}

#[derive(Debug)]
pub(crate) struct Gate {
    free: AtomicIsize,
    queued: AtomicUsize,
    limit: usize,
    queue: Mutex<Queue>,
    cv: Condvar,
    aging: Duration,
}

/// A held permit; released on drop.
#[derive(Debug)]
pub(crate) struct Permit(Arc<Gate>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// Effective priority after waiting `waited`: one level per `aging` period.
pub(crate) fn effective(level: i64, waited: Duration, aging: Duration) -> i64 {
    if aging.is_zero() {
        return level;
    }
    level + (waited.as_nanos() / aging.as_nanos()).min(i64::MAX as u128 / 2) as i64
}

impl Gate {
    pub(crate) fn new(limit: usize, aging: Duration) -> Self {
        Gate {
            free: AtomicIsize::new(limit.min(isize::MAX as usize) as isize),
            queued: AtomicUsize::new(0),
            limit,
            queue: Mutex::new(Queue::default()),
            cv: Condvar::new(),
            aging,
        }
    }

    pub(crate) fn queued(&self) -> usize {
        self.queued.load(SeqCst)
    }

    /// Permits held (granted-but-not-yet-woken waiters included).
    pub(crate) fn active(&self) -> usize {
        let free = self.free.load(SeqCst).max(0) as usize;
        self.limit.min(isize::MAX as usize).saturating_sub(free)
    }

    /// The uncontended path: a permit without queueing, or `None` when one must wait.
    pub(crate) fn try_fast(self: &Arc<Self>) -> Option<Permit> {
        (self.queued.load(SeqCst) == 0 && self.try_take()).then(|| Permit(self.clone()))
    }

    fn try_take(&self) -> bool {
        let mut f = self.free.load(SeqCst);
        while f > 0 {
            match self.free.compare_exchange_weak(f, f - 1, SeqCst, SeqCst) {
                Ok(_) => return true,
                Err(now) => f = now,
            }
        }
        false
    }

    /// Waits for a permit until `deadline`; `None` when it passed first.
    pub(crate) fn acquire(
        self: &Arc<Self>,
        priority: Priority,
        deadline: Instant,
    ) -> Option<Permit> {
        if let Some(p) = self.try_fast() {
            return Some(p);
        }
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.waiters.push(Waiter {
            ticket,
            level: priority.level(),
            since: Instant::now(),
            granted: false,
        });
        self.queued.fetch_add(1, SeqCst);
        // A release may have freed a permit before we were queued.
        self.dispatch(&mut q);
        loop {
            let Some(pos) = q.waiters.iter().position(|w| w.ticket == ticket) else {
                return None; // unreachable: only this thread removes its entry
            };
            if q.waiters[pos].granted {
                q.waiters.remove(pos);
                self.queued.fetch_sub(1, SeqCst);
                return Some(Permit(self.clone()));
            }
            let now = Instant::now();
            if now >= deadline {
                q.waiters.remove(pos);
                self.queued.fetch_sub(1, SeqCst);
                return None;
            }
            // Wake at least every aging period so effective priorities are re-evaluated.
            let mut wait = deadline - now;
            if !self.aging.is_zero() {
                wait = wait.min(self.aging);
            }
            q = self
                .cv
                .wait_timeout(q, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Hands free permits to the best waiters (under the queue lock).
    fn dispatch(&self, q: &mut Queue) {
        let now = Instant::now();
        let mut handed = false;
        loop {
            let best = q.waiters.iter_mut().filter(|w| !w.granted).max_by(|a, b| {
                let ea = effective(a.level, now - a.since, self.aging);
                let eb = effective(b.level, now - b.since, self.aging);
                ea.cmp(&eb).then(b.ticket.cmp(&a.ticket))
            });
            let Some(best) = best else { break };
            if !self.try_take() {
                break;
            }
            best.granted = true;
            handed = true;
        }
        if handed {
            self.cv.notify_all();
        }
    }

    fn release(&self) {
        self.free.fetch_add(1, SeqCst);
        if self.queued.load(SeqCst) > 0 {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            self.dispatch(&mut q);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aging_raises_one_level_per_period() {
        let a = Duration::from_millis(100);
        let cases = [
            (-1, 0, -1),
            (-1, 99, -1),
            (-1, 100, 0),
            (-1, 250, 1),
            (1, 0, 1),
        ];
        for (level, ms, want) in cases {
            assert_eq!(
                effective(level, Duration::from_millis(ms), a),
                want,
                "{level} after {ms}ms"
            );
        }
        assert_eq!(
            effective(0, Duration::from_secs(100), Duration::ZERO),
            0,
            "no aging"
        );
    }

    #[test]
    fn limit_holds_and_a_waiter_times_out() {
        let g = Arc::new(Gate::new(1, Duration::ZERO));
        let far = Instant::now() + Duration::from_secs(5);
        let p = g.acquire(Priority::Normal, far).unwrap();
        assert_eq!(g.active(), 1);
        let t0 = Instant::now();
        assert!(
            g.acquire(Priority::High, t0 + Duration::from_millis(30))
                .is_none()
        );
        assert!(t0.elapsed() >= Duration::from_millis(30));
        assert_eq!(g.queued(), 0, "a timed-out waiter leaves the queue");
        drop(p);
        assert!(g.acquire(Priority::Normal, far).is_some());
    }
}
