//! The async front door: a timed-out or cancelled `load_path_async` returns only after
//! its blocking work stopped, so shutting the runtime down right after leaves no thread
//! behind. One test per binary, so the thread count is this test's alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gauntlet_engine::fixture::{Preset, WeightFormat};
use gauntlet_engine::load::{
    CancellationToken, LoadError, LoadGate, LoadOptions, Loader, ProgressEvent, Stage,
};
use gauntlet_suites::fixtures;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("procfs")
        .count()
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("procfs").count()
}

#[test]
fn async_timeout_and_cancel_leave_no_thread_or_descriptor() {
    let Some(model) = fixtures::path_or_skip(Preset::Bitnet2b4t, WeightFormat::Tq2_0, 0) else {
        return;
    };
    let threads_before = threads();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    // The runtime's own descriptors (epoll, and tokio's process-wide signal pipe that
    // outlives every runtime) exist from here on; the loads must add none.
    rt.block_on(async {});
    let fds_before = fds();
    let budget = Duration::from_millis(500);
    let opts = || {
        LoadOptions::default()
            .gate(LoadGate::new(4))
            .chunk_size(16 << 20)
            .progress_interval(Duration::ZERO)
    };
    // Stand-in for slow storage: hold the blocking thread past the deadline mid-populate.
    let fired = Arc::new(AtomicBool::new(false));
    let stall = move |e: &ProgressEvent| {
        if e.stage == Stage::Populate
            && e.bytes_done >= 32 << 20
            && !fired.swap(true, Ordering::SeqCst)
        {
            let until =
                Instant::now() + budget.saturating_sub(e.elapsed) + Duration::from_millis(1);
            while Instant::now() < until {
                std::thread::park_timeout(until.saturating_duration_since(Instant::now()));
            }
        }
    };
    let timed_out =
        rt.block_on(Loader::new(opts().timeout(budget).progress(stall)).load_path_async(&model));
    assert!(
        matches!(
            timed_out,
            Err(LoadError::TimedOut {
                stage: Stage::Populate,
                ..
            })
        ),
        "{timed_out:?}"
    );
    let token = CancellationToken::new();
    let t = token.clone();
    let cancel = move |e: &ProgressEvent| {
        if e.stage == Stage::Populate && e.bytes_done >= 32 << 20 {
            t.cancel();
        }
    };
    let cancelled = rt
        .block_on(Loader::new(opts().cancel_token(token).progress(cancel)).load_path_async(&model));
    assert!(
        matches!(cancelled, Err(LoadError::Cancelled { .. })),
        "{cancelled:?}"
    );
    assert_eq!(fds(), fds_before, "descriptors back to baseline");
    // If a blocking load were still running, shutdown would give up on it after the bound
    // and its thread would still be counted below.
    rt.shutdown_timeout(Duration::from_secs(5));
    assert_eq!(threads(), threads_before, "threads back to baseline");
}
