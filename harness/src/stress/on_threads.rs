//! The OS-thread runner.

use std::{
    any::Any,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use super::{
    Stress, StressCtx, StressError, StressReport, StuckTask,
    ctx::planned_jitter,
    monitor::{self, Board},
    report::summarize,
};

enum Msg {
    Done(Vec<Duration>),
    Panicked {
        task: usize,
        iteration: u64,
        message: String,
    },
    Stuck(Vec<StuckTask>),
}

pub(crate) fn panic_message(p: &(dyn Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into())
}

pub(crate) fn run<F>(s: &Stress, seed: u64, body: F) -> Result<StressReport, StressError>
where
    F: Fn(&mut StressCtx) + Send + Sync + 'static,
{
    let total = s.effective_iterations();
    let c = s.concurrency;
    let board = Board::new(c);
    let body = Arc::new(body);
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    let wd_tx = tx.clone();
    let _watchdog = monitor::watch(board.clone(), s.watchdog, move |stuck| {
        let _ = wd_tx.send(Msg::Stuck(stuck));
    });
    for task in 0..c {
        let (board, body, halt, tx) = (board.clone(), body.clone(), stop.clone(), tx.clone());
        let jitter_max = s.jitter;
        let spawned = std::thread::Builder::new()
            .name(format!("gauntlet-stress-{task}"))
            .spawn(move || {
                let mut lat = Vec::new();
                for it in Stress::iterations_of(task, c, total) {
                    if halt.load(Ordering::Relaxed) {
                        break;
                    }
                    let j = planned_jitter(seed, task, it, jitter_max);
                    if !j.is_zero() {
                        std::thread::sleep(j);
                    }
                    let mut ctx =
                        StressCtx::for_iteration(task, it, seed, jitter_max, board.clone());
                    board.begin(task, it);
                    let t0 = Instant::now();
                    let r = catch_unwind(AssertUnwindSafe(|| body(&mut ctx)));
                    lat.push(t0.elapsed());
                    board.end(task);
                    if let Err(p) = r {
                        board.finish(task);
                        let message = panic_message(p.as_ref());
                        let _ = tx.send(Msg::Panicked {
                            task,
                            iteration: it,
                            message,
                        });
                        return;
                    }
                }
                board.finish(task);
                let _ = tx.send(Msg::Done(lat));
            });
        if let Err(e) = spawned {
            stop.store(true, Ordering::Relaxed);
            return Err(StressError::Spawn(e.to_string()));
        }
    }
    drop(tx);
    let mut all = Vec::new();
    let mut done = 0;
    // Bounded by the watchdog: if nothing progresses, it sends `Stuck`.
    while done < c {
        match rx.recv() {
            Ok(Msg::Done(l)) => {
                all.extend(l);
                done += 1;
            }
            Ok(Msg::Panicked {
                task,
                iteration,
                message,
            }) => {
                stop.store(true, Ordering::Relaxed);
                let last_breadcrumb = board.last_breadcrumb(task);
                return Err(StressError::Panicked {
                    seed,
                    task,
                    iteration,
                    message,
                    last_breadcrumb,
                });
            }
            Ok(Msg::Stuck(stuck)) => {
                stop.store(true, Ordering::Relaxed);
                return Err(StressError::Stuck {
                    seed,
                    watchdog: s.watchdog,
                    stuck,
                });
            }
            Err(_) => break,
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
