//! After a timeout or a cancel, everything the load held is released: no mapping of the
//! file, no big buffer, no descriptor, no thread. One test per binary, so no other test
//! in this process opens files or threads while the counts are taken.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gauntlet_engine::fixture::{Preset, WeightFormat};
use gauntlet_engine::load::{
    CancellationToken, LoadError, LoadGate, LoadMode, LoadOptions, Loader, ProgressEvent, Stage,
};
use gauntlet_suites::fixtures;

/// What a load could leak, read from /proc/self.
#[derive(Debug, PartialEq, Eq)]
struct Held {
    fds: usize,
    threads: usize,
    file_mappings: usize,
    /// Virtual size in MiB, rounded down to 64 MiB so allocator noise does not count; a
    /// leaked 1.7 GiB buffer or mapping does.
    vm_64mib: u64,
}

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).expect("procfs").count()
}

fn held(model: &Path) -> Held {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
    let name = model.to_string_lossy();
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let vm_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmSize");
    Held {
        fds: count("/proc/self/fd"),
        threads: count("/proc/self/task"),
        file_mappings: maps.lines().filter(|l| l.ends_with(&*name)).count(),
        vm_64mib: vm_kib / (64 * 1024),
    }
}

fn bulk(mode: LoadMode) -> Stage {
    match mode {
        LoadMode::Mmap => Stage::Populate,
        LoadMode::Read => Stage::Read,
    }
}

/// A sink standing in for slow storage: once `threshold` bytes of bulk work are done,
/// it holds the loader until `budget` has passed, so the deadline expires mid-load.
fn stall_past(
    mode: LoadMode,
    budget: Duration,
    threshold: u64,
) -> impl Fn(&ProgressEvent) + Send + Sync {
    let fired = Arc::new(std::sync::atomic::AtomicBool::new(false));
    move |e: &ProgressEvent| {
        if e.stage == bulk(mode)
            && e.bytes_done >= threshold
            && !fired.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            let until =
                Instant::now() + budget.saturating_sub(e.elapsed) + Duration::from_millis(1);
            while Instant::now() < until {
                std::thread::park_timeout(until.saturating_duration_since(Instant::now()));
            }
        }
    }
}

fn opts(mode: LoadMode) -> LoadOptions {
    LoadOptions::default()
        .mode(mode)
        .gate(LoadGate::new(4))
        .chunk_size(16 << 20)
        .progress_interval(Duration::ZERO)
}

/// The >1 GiB fixture, or `None` (after a `SKIP` line) where the disk lacks room.
fn path() -> Option<PathBuf> {
    fixtures::path_or_skip(Preset::Bitnet2b4t, WeightFormat::Tq2_0, 0)
}

#[test]
fn timeout_and_cancel_release_mapping_buffers_fds_and_threads() {
    let Some(model) = path() else { return };
    // Warm anything lazily created on first use (the global gate, stdout locks).
    let _ = Loader::new(opts(LoadMode::Mmap).timeout(Duration::from_nanos(1))).load_path(&model);
    let baseline = held(&model);
    let budget = Duration::from_millis(800);
    for mode in [LoadMode::Mmap, LoadMode::Read] {
        let err = Loader::new(opts(mode).timeout(budget).progress(stall_past(
            mode,
            budget,
            32 << 20,
        )))
        .load_path(&model)
        .expect_err("deadline passes mid-load");
        assert!(
            matches!(err, LoadError::TimedOut { stage, bytes_done, .. } if stage == bulk(mode) && bytes_done >= 32 << 20),
            "{mode}: {err}"
        );
        assert_eq!(held(&model), baseline, "{mode}: after timeout");

        let token = CancellationToken::new();
        let t = token.clone();
        let sink = move |e: &ProgressEvent| {
            if e.stage == bulk(mode) && e.bytes_done >= 32 << 20 {
                t.cancel();
            }
        };
        let err = Loader::new(opts(mode).cancel_token(token).progress(sink))
            .load_path(&model)
            .expect_err("cancelled mid-load");
        assert!(matches!(err, LoadError::Cancelled { .. }), "{mode}: {err}");
        assert_eq!(held(&model), baseline, "{mode}: after cancel");
    }
    // The check can fail: a model kept alive holds its mapping or buffer.
    let alive = Loader::new(opts(LoadMode::Mmap))
        .load_path(&model)
        .expect("loads");
    assert_ne!(
        held(&model),
        baseline,
        "a live model is visible in the counts"
    );
    drop(alive);
    assert_eq!(held(&model), baseline, "and gone once dropped");
}
