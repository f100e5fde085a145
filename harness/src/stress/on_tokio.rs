//! The tokio runner: one task per slot on the caller's runtime.

use std::{collections::HashMap, sync::Arc, time::Instant};

use tokio::task::JoinSet;

use super::{
    Stress, StressCtx, StressError, StressReport,
    ctx::planned_jitter,
    monitor::{self, Board},
    on_threads::panic_message,
    report::summarize,
};

pub(crate) async fn run<F, Fut>(s: &Stress, seed: u64, body: F) -> Result<StressReport, StressError>
where
    F: Fn(StressCtx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let total = s.effective_iterations();
    let c = s.concurrency;
    let board = Board::new(c);
    let body = Arc::new(body);
    let (stuck_tx, mut stuck_rx) = tokio::sync::mpsc::unbounded_channel();
    let start = Instant::now();
    let _watchdog = monitor::watch(board.clone(), s.watchdog, move |stuck| {
        let _ = stuck_tx.send(stuck);
    });
    let mut set = JoinSet::new();
    let mut ids = HashMap::new();
    for task in 0..c {
        let (board, body) = (board.clone(), body.clone());
        let jitter_max = s.jitter;
        let handle = set.spawn(async move {
            let mut lat = Vec::new();
            for it in Stress::iterations_of(task, c, total) {
                let j = planned_jitter(seed, task, it, jitter_max);
                if !j.is_zero() {
                    tokio::time::sleep(j).await;
                }
                let ctx = StressCtx::for_iteration(task, it, seed, jitter_max, board.clone());
                board.begin(task, it);
                let t0 = Instant::now();
                body(ctx).await;
                lat.push(t0.elapsed());
                board.end(task);
            }
            board.finish(task);
            lat
        });
        ids.insert(handle.id(), task);
    }
    let mut all = Vec::new();
    loop {
        tokio::select! {
            Some(stuck) = stuck_rx.recv() => {
                set.abort_all();
                return Err(StressError::Stuck { seed, watchdog: s.watchdog, stuck });
            }
            joined = set.join_next() => match joined {
                None => break,
                Some(Ok(lat)) => all.extend(lat),
                Some(Err(e)) => {
                    let task = ids.get(&e.id()).copied().unwrap_or(usize::MAX);
                    let iteration = board.iteration_of(task);
                    let last_breadcrumb = board.last_breadcrumb(task);
                    set.abort_all();
                    let message = if e.is_panic() {
                        panic_message(e.into_panic().as_ref())
                    } else {
                        "task was cancelled".into()
                    };
                    return Err(StressError::Panicked { seed, task, iteration, message, last_breadcrumb });
                }
            }
        }
    }
    Ok(summarize(
        seed,
        c,
        start.elapsed(),
        all,
        board.concurrency(),
    ))
}
