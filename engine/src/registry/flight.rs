//! Single-flight loading: one loader thread per attempt, any number of waiters with their own
//! deadlines.
//!
//! The load runs on its own thread, so no caller is the loader: a caller whose deadline passes
//! leaves and the load goes on for the others. Every waiter of a failed (or panicked, or
//! cancelled) attempt gets that attempt's error; the cell stays empty and the next caller starts
//! a new attempt. A panicking loader is caught on its thread and poisons nothing.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use tokio_util::sync::CancellationToken;

use super::{LoadContext, LoadFn, cell::SwapCell};

/// How an attempt that did not produce a model ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AttemptError {
    Failed(String),
    Panicked(String),
    Cancelled,
    NoThread(String),
}

#[derive(Debug, Default)]
struct State {
    loading: Option<(u64, CancellationToken)>,
    attempts: u64,
    last_failure: Option<(u64, AttemptError)>,
}

#[derive(Debug, Default)]
pub(crate) struct Flight {
    state: Mutex<State>,
    cv: Condvar,
    pub(crate) started: AtomicU64,
    pub(crate) failed: AtomicU64,
}

/// Why `get` returned without a model.
#[derive(Debug)]
pub(crate) enum Wait {
    Failed(AttemptError),
    TimedOut,
}

impl Flight {
    pub(crate) fn is_loading(&self) -> bool {
        self.lock().loading.is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn cancel(&self) -> bool {
        match &self.lock().loading {
            Some((_, token)) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// The loaded model, loading it (once, shared) if needed.
    pub(crate) fn get<M: Send + Sync + 'static>(
        self: &Arc<Self>,
        cell: &Arc<SwapCell<M>>,
        loader: &LoadFn<M>,
        deadline: Instant,
    ) -> Result<Arc<M>, Wait> {
        if let Some(m) = cell.load() {
            return Ok(m);
        }
        let mut st = self.lock();
        let mut mine = None;
        loop {
            if let Some(m) = cell.load() {
                return Ok(m);
            }
            if let (Some(a), Some((f, e))) = (mine, &st.last_failure)
                && a == *f
            {
                return Err(Wait::Failed(e.clone()));
            }
            match &st.loading {
                Some((a, _)) => mine = Some(*a),
                None => {
                    st.attempts += 1;
                    let attempt = st.attempts;
                    let token = CancellationToken::new();
                    st.loading = Some((attempt, token.clone()));
                    mine = Some(attempt);
                    self.started.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = self.spawn(attempt, token, cell.clone(), loader.clone()) {
                        st.loading = None;
                        self.failed.fetch_add(1, Ordering::Relaxed);
                        let err = AttemptError::NoThread(e.to_string());
                        st.last_failure = Some((attempt, err.clone()));
                        return Err(Wait::Failed(err));
                    }
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Wait::TimedOut);
            }
            st = self
                .cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn spawn<M: Send + Sync + 'static>(
        self: &Arc<Self>,
        attempt: u64,
        token: CancellationToken,
        cell: Arc<SwapCell<M>>,
        loader: LoadFn<M>,
    ) -> std::io::Result<()> {
        let me = self.clone();
        std::thread::Builder::new()
            .name(format!("gauntlet-registry-load-{attempt}"))
            .spawn(move || {
                let ctx = LoadContext {
                    cancel: token.clone(),
                };
                let r = catch_unwind(AssertUnwindSafe(|| loader(&ctx)));
                let outcome = match r {
                    Ok(Ok(_)) if token.is_cancelled() => Err(AttemptError::Cancelled),
                    Ok(Ok(m)) => Ok(m),
                    Ok(Err(_)) if token.is_cancelled() => Err(AttemptError::Cancelled),
                    Ok(Err(e)) => Err(AttemptError::Failed(e)),
                    Err(p) => Err(AttemptError::Panicked(
                        p.downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| p.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "non-string panic".into()),
                    )),
                };
                let mut st = me.lock();
                match outcome {
                    Ok(m) => {
                        cell.store(Some(Arc::new(m)));
                    }
                    Err(e) => {
                        me.failed.fetch_add(1, Ordering::Relaxed);
                        st.last_failure = Some((attempt, e));
                    }
                }
                st.loading = None;
                drop(st);
                me.cv.notify_all();
            })
            .map(|_| ())
    }
}
