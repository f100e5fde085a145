//! `SwapCell`: the current model, read without locks, replaced atomically.
//!
//! Readers pin a generation with a counter, re-check that it is still current, and clone the
//! `Arc` out of it. A writer publishes a new generation, waits for the old one's pins to drain
//! (they last for one `Arc` clone), then takes the old value out — so an old model is freed as
//! soon as its last lease is dropped, not when the cell is. Generation headers (two words) are
//! kept until the cell drops, because a reader that loaded a stale pointer may still touch its
//! counter; one header is retired per store (a load or a swap), which is negligible.

use std::{
    cell::UnsafeCell,
    ptr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicPtr, AtomicUsize, Ordering::SeqCst},
    },
};

struct Generation<M> {
    readers: AtomicUsize,
    value: UnsafeCell<Option<Arc<M>>>,
}

pub(crate) struct SwapCell<M> {
    current: AtomicPtr<Generation<M>>,
    // Boxed on purpose: stale readers hold raw pointers to retired generations, so their
    // addresses must not move when the Vec grows.
    #[allow(clippy::vec_box)]
    retired: Mutex<Vec<Box<Generation<M>>>>,
    writer: Mutex<()>,
}

// SAFETY: the cell hands out `Arc<M>` clones across threads, which needs `M: Send + Sync`; all
// shared mutation goes through atomics or happens with no reader pinned (see `store`).
unsafe impl<M: Send + Sync> Send for SwapCell<M> {}
// SAFETY: as above.
unsafe impl<M: Send + Sync> Sync for SwapCell<M> {}

impl<M> SwapCell<M> {
    pub(crate) fn new() -> Self {
        SwapCell {
            current: AtomicPtr::new(Box::into_raw(Box::new(Generation {
                readers: AtomicUsize::new(0),
                value: UnsafeCell::new(None),
            }))),
            retired: Mutex::new(Vec::new()),
            writer: Mutex::new(()),
        }
    }

    /// The current value; lock-free.
    pub(crate) fn load(&self) -> Option<Arc<M>> {
        loop {
            let g = self.current.load(SeqCst);
            // SAFETY: generations are freed only when the cell drops.
            let generation = unsafe { &*g };
            generation.readers.fetch_add(1, SeqCst);
            if self.current.load(SeqCst) != g {
                generation.readers.fetch_sub(1, SeqCst);
                continue;
            }
            // SAFETY: `g` was current after we pinned it, so a writer replacing it waits for our
            // pin to drop before touching `value`.
            let v = unsafe { (*generation.value.get()).clone() };
            generation.readers.fetch_sub(1, SeqCst);
            return v;
        }
    }

    /// Publishes `v` and returns the previous value (which lives on in any leases holding it).
    pub(crate) fn store(&self, v: Option<Arc<M>>) -> Option<Arc<M>> {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = Box::into_raw(Box::new(Generation {
            readers: AtomicUsize::new(0),
            value: UnsafeCell::new(v),
        }));
        let old = self.current.swap(fresh, SeqCst);
        // SAFETY: `old` came from `Box::into_raw` and is freed only in `drop`.
        let old = unsafe { Box::from_raw(old) };
        // Pins last for one Arc clone; a pin taken after the swap sees `current != old` and
        // leaves without reading `value`.
        while old.readers.load(SeqCst) != 0 {
            std::thread::yield_now();
        }
        // SAFETY: no reader is pinned on `old` and none can start reading it (see above).
        let prev = unsafe { (*old.value.get()).take() };
        self.retired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(old);
        prev
    }
}

impl<M> Drop for SwapCell<M> {
    fn drop(&mut self) {
        let g = self.current.swap(ptr::null_mut(), SeqCst);
        if !g.is_null() {
            // SAFETY: `&mut self`: no reader exists; `g` came from `Box::into_raw`.
            drop(unsafe { Box::from_raw(g) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_returns_the_previous_value_and_load_sees_the_new_one() {
        let c = SwapCell::new();
        assert!(c.load().is_none());
        assert!(c.store(Some(Arc::new(1))).is_none());
        assert_eq!(*c.load().unwrap(), 1);
        assert_eq!(c.store(Some(Arc::new(2))).map(|a| *a), Some(1));
        assert_eq!(*c.load().unwrap(), 2);
    }

    #[test]
    fn replaced_value_is_freed_when_its_last_reader_drops_it() {
        let c = SwapCell::new();
        let first = Arc::new(vec![0u8; 16]);
        let weak = Arc::downgrade(&first);
        c.store(Some(first));
        let lease = c.load().unwrap();
        drop(c.store(Some(Arc::new(vec![1u8; 16]))));
        assert!(weak.upgrade().is_some(), "still leased");
        drop(lease);
        assert!(weak.upgrade().is_none(), "freed with its last lease");
    }

    #[test]
    fn concurrent_readers_always_see_a_whole_published_value() {
        let c = Arc::new(SwapCell::new());
        c.store(Some(Arc::new((0u64, 0u64))));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        let v = c.load().unwrap();
                        assert_eq!(v.0, v.1, "torn value");
                    }
                })
            })
            .collect();
        for i in 1..2_000u64 {
            c.store(Some(Arc::new((i, i))));
        }
        for r in readers {
            r.join().unwrap();
        }
    }
}
