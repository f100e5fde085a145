//! The loader on real files written by the GGUF writer: both modes, both front doors,
//! progress, cancellation, deadlines, the gate, truncation and the memory check.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gauntlet_engine::gguf::{GgmlType, GgufBuilder, MetaValue};
use gauntlet_engine::load::{
    CancellationToken, LoadError, LoadGate, LoadMode, LoadOptions, Loader, ProgressEvent, Stage,
};
use gauntlet_engine::preflight::SystemRoot;
use rstest::rstest;
use tempfile::TempDir;

const TENSORS: u64 = 8;
const ELEMS: u64 = 256 * 1024; // 1 MiB of f32 per tensor

fn pattern(t: u64, i: usize) -> u8 {
    (t as usize * 31 + i * 7 % 251) as u8
}

/// An 8 MiB model whose tensor bytes follow [`pattern`].
fn write_model(dir: &Path) -> PathBuf {
    let mut b = GgufBuilder::new();
    b.metadata("general.architecture", MetaValue::String("llama".into()))
        .expect("meta");
    for t in 0..TENSORS {
        b.tensor(&format!("blk.{t}.weight"), &[ELEMS], GgmlType::F32)
            .expect("tensor");
    }
    let path = dir.join("model.gguf");
    let file = std::fs::File::create(&path).expect("create");
    let mut w = b.start(std::io::BufWriter::new(file)).expect("start");
    for t in 0..TENSORS {
        let data: Vec<u8> = (0..(ELEMS * 4) as usize).map(|i| pattern(t, i)).collect();
        w.write_data(&data).expect("data");
    }
    w.finish().expect("finish");
    path
}

fn events() -> (
    Arc<Mutex<Vec<ProgressEvent>>>,
    impl Fn(&ProgressEvent) + Send + Sync,
) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink_log = log.clone();
    (log, move |e: &ProgressEvent| {
        sink_log.lock().expect("lock").push(*e)
    })
}

fn opts() -> LoadOptions {
    LoadOptions::default()
        .gate(LoadGate::new(4))
        .chunk_size(1 << 20)
        .progress_interval(Duration::ZERO)
}

fn assert_tensors_match(model: &gauntlet_engine::load::LoadedModel) {
    for t in 0..TENSORS {
        let data = model
            .tensor(&format!("blk.{t}.weight"))
            .expect("tensor present");
        assert_eq!(data.len() as u64, ELEMS * 4);
        assert!(
            data.iter().enumerate().all(|(i, &b)| b == pattern(t, i)),
            "tensor {t} bytes differ"
        );
    }
}

fn assert_monotonic_and_complete(events: &[ProgressEvent], total: u64) {
    assert!(events.len() > 3, "events: {events:?}");
    for w in events.windows(2) {
        assert!(w[1].stage >= w[0].stage, "stage went back: {w:?}");
        assert!(w[1].bytes_done >= w[0].bytes_done, "bytes went back: {w:?}");
        assert!(
            w[1].tensors_done >= w[0].tensors_done,
            "tensors went back: {w:?}"
        );
        assert!(w[1].elapsed >= w[0].elapsed, "time went back: {w:?}");
    }
    let last = events.last().expect("an event");
    assert_eq!(last.stage, Stage::Done);
    assert_eq!((last.bytes_done, last.bytes_total), (total, total));
    assert_eq!((last.tensors_done, last.tensors_total), (TENSORS, TENSORS));
}

#[rstest]
#[case::mmap(LoadMode::Mmap, Stage::Populate)]
#[case::read(LoadMode::Read, Stage::Read)]
fn path_load_serves_every_tensor_with_monotonic_complete_progress(
    #[case] mode: LoadMode,
    #[case] bulk: Stage,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_model(dir.path());
    let (log, sink) = events();
    let model = Loader::new(opts().mode(mode).progress(sink))
        .load_path(&path)
        .expect("loads");
    assert_eq!(model.mode(), mode);
    assert_tensors_match(&model);
    let events = log.lock().expect("lock").clone();
    let total = std::fs::metadata(&path).expect("stat").len();
    assert_monotonic_and_complete(&events, total);
    let stages: Vec<Stage> = events.iter().map(|e| e.stage).collect();
    for s in [
        Stage::Queued,
        Stage::Open,
        Stage::Header,
        Stage::Metadata,
        Stage::TensorIndex,
        bulk,
    ] {
        assert!(stages.contains(&s), "missing stage {s} in {stages:?}");
    }
    assert!(
        events.iter().filter(|e| e.stage == bulk).count() >= 8,
        "one event per 1 MiB chunk expected: {events:?}"
    );
}

#[test]
fn reader_load_matches_file_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_model(dir.path());
    let bytes = std::fs::read(&path).expect("read");
    let model = Loader::new(opts())
        .load_reader(Cursor::new(bytes))
        .expect("loads");
    assert_eq!(model.mode(), LoadMode::Read);
    assert_tensors_match(&model);
}

#[test]
fn owned_data_is_aligned_to_the_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_model(dir.path());
    let model = Loader::new(opts().mode(LoadMode::Read))
        .load_path(&path)
        .expect("loads");
    assert_eq!(model.data_section().as_ptr() as usize % 4096, 0);
}

#[rstest]
#[case::mmap(LoadMode::Mmap)]
#[case::read(LoadMode::Read)]
fn cancel_mid_load_stops_within_one_chunk(#[case] mode: LoadMode) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_model(dir.path());
    let token = CancellationToken::new();
    let at_cancel = Arc::new(Mutex::new(None));
    let (t, seen) = (token.clone(), at_cancel.clone());
    let sink = move |e: &ProgressEvent| {
        if matches!(e.stage, Stage::Populate | Stage::Read)
            && e.bytes_done > 2 << 20
            && !t.is_cancelled()
        {
            *seen.lock().expect("lock") = Some(e.bytes_done);
            t.cancel();
        }
    };
    let err = Loader::new(opts().mode(mode).cancel_token(token).progress(sink))
        .load_path(&path)
        .expect_err("cancelled");
    let cancelled_at = at_cancel.lock().expect("lock").expect("cancel fired");
    match err {
        LoadError::Cancelled {
            stage,
            bytes_done,
            bytes_total,
            ..
        } => {
            assert!(matches!(stage, Stage::Populate | Stage::Read), "{stage}");
            assert!(bytes_done < bytes_total);
            assert!(
                bytes_done <= cancelled_at + (1 << 20),
                "{bytes_done} > {cancelled_at} + 1 chunk"
            );
        }
        other => panic!("expected Cancelled, got {other}"),
    }
}

#[test]
fn tiny_budget_times_out_in_a_named_stage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_model(dir.path());
    let err = Loader::new(opts().timeout(Duration::from_nanos(1)))
        .load_path(&path)
        .expect_err("times out");
    let LoadError::TimedOut { stage, budget, .. } = &err else {
        panic!("expected TimedOut, got {err}");
    };
    assert_eq!(*budget, Duration::from_nanos(1));
    assert!(
        err.to_string().contains(&format!("in stage '{stage}'")),
        "{err}"
    );
}

#[test]
fn full_gate_makes_the_next_load_wait_and_time_out_queued() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_model(dir.path());
    let gate = LoadGate::new(1);
    let held = gate.try_acquire().expect("free slot");
    let started = std::time::Instant::now();
    let err = Loader::new(opts().gate(gate.clone()).timeout(Duration::from_millis(50)))
        .load_path(&path)
        .expect_err("waits then times out");
    let waited = started.elapsed();
    assert!(
        matches!(
            err,
            LoadError::TimedOut {
                stage: Stage::Queued,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        waited >= Duration::from_millis(50) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    drop(held);
    Loader::new(opts().gate(gate.clone()).timeout(Duration::from_secs(10)))
        .load_path(&path)
        .expect("loads once the slot is free");
    assert_eq!(gate.running(), 0, "permits are returned");
}

#[rstest]
#[case::mmap(LoadMode::Mmap)]
#[case::read(LoadMode::Read)]
fn truncated_file_is_an_error_not_a_hang(#[case] mode: LoadMode) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_model(dir.path());
    let len = std::fs::metadata(&path).expect("stat").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(len / 2))
        .expect("truncate");
    let err = Loader::new(opts().mode(mode).timeout(Duration::from_secs(10)))
        .load_path(&path)
        .expect_err("rejected");
    assert!(matches!(err, LoadError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("blk."), "names the tensor: {err}");
}

/// A reader that announces more bytes than it delivers.
struct ShortReader {
    inner: Cursor<Vec<u8>>,
    claimed: u64,
}

impl std::io::Read for ShortReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

impl std::io::Seek for ShortReader {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        match pos {
            std::io::SeekFrom::End(0) => Ok(self.claimed),
            other => self.inner.seek(other),
        }
    }
}

#[test]
fn reader_ending_early_is_truncated_with_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_model(dir.path());
    let bytes = std::fs::read(&path).expect("read");
    let real = bytes.len() as u64;
    let err = Loader::new(opts())
        .load_reader(ShortReader {
            inner: Cursor::new(bytes),
            claimed: real + 4096,
        })
        .expect_err("short");
    match err {
        LoadError::Truncated {
            got,
            expected,
            stage,
            ..
        } => {
            assert_eq!((got, expected, stage), (real, real + 4096, Stage::Read));
        }
        other => panic!("expected Truncated, got {other}"),
    }
}

fn write_tight_machine(dir: &TempDir) -> SystemRoot {
    let w = |p: &str, c: &str| {
        let path = dir.path().join(p);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, c).expect("write");
    };
    w("proc/self/cgroup", "4:memory:/small\n");
    w(
        "proc/self/mountinfo",
        "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
    );
    w(
        "sys/fs/cgroup/memory/small/memory.limit_in_bytes",
        "4194304\n",
    );
    w("sys/fs/cgroup/memory/small/memory.usage_in_bytes", "0\n");
    w("proc/meminfo", "MemAvailable: 64000000 kB\n");
    SystemRoot::at(dir.path())
}

#[test]
fn memcheck_refuses_before_allocating() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_model(dir.path());
    let machine = tempfile::tempdir().expect("tempdir");
    let (log, sink) = events();
    let err = Loader::new(
        opts()
            .mode(LoadMode::Read)
            .memcheck(write_tight_machine(&machine))
            .progress(sink),
    )
    .load_path(&path)
    .expect_err("refused");
    let LoadError::WontFit { preflight } = &err else {
        panic!("expected WontFit, got {err}");
    };
    assert!(
        preflight
            .message()
            .contains("/sys/fs/cgroup/memory/small/memory.limit_in_bytes")
    );
    let events = log.lock().expect("lock");
    assert!(
        events.iter().all(|e| e.stage <= Stage::TensorIndex),
        "nothing read: {events:?}"
    );
}

#[tokio::test]
async fn async_path_load_runs_on_the_blocking_pool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_model(dir.path());
    let model = Loader::new(opts())
        .load_path_async(&path)
        .await
        .expect("loads");
    assert_tensors_match(&model);
}

#[tokio::test]
async fn async_path_load_cancel_returns_after_the_work_stopped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_model(dir.path());
    let token = CancellationToken::new();
    let t = token.clone();
    let sink = move |e: &ProgressEvent| {
        if e.stage == Stage::Populate && e.bytes_done > 0 {
            t.cancel();
        }
    };
    let err = Loader::new(opts().cancel_token(token).progress(sink))
        .load_path_async(&path)
        .await
        .expect_err("cancelled");
    assert!(
        matches!(
            err,
            LoadError::Cancelled {
                stage: Stage::Populate,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn dropping_the_async_future_cancels_the_blocking_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_model(dir.path());
    let total = std::fs::metadata(&path).expect("stat").len();
    let (tx, rx) = std::sync::mpsc::channel::<ProgressEvent>();
    let (dropped_tx, dropped_rx) = std::sync::mpsc::channel::<()>();
    let started = Arc::new(tokio::sync::Notify::new());
    let s = started.clone();
    let held = Mutex::new((tx, Some(dropped_rx)));
    // On the first populate step the sink tells the test, then holds the loader until
    // the test has dropped the future, so the load cannot finish first.
    let sink = move |e: &ProgressEvent| {
        let mut held = held.lock().expect("lock");
        let _ = held.0.send(*e);
        if e.stage == Stage::Populate
            && e.bytes_done > 0
            && let Some(dropped) = held.1.take()
        {
            s.notify_one();
            let _ = dropped.recv_timeout(Duration::from_secs(10));
        }
    };
    let loader = Loader::new(opts().progress(sink));
    tokio::select! {
        r = loader.load_path_async(&path) => panic!("finished before the drop: {r:?}"),
        _ = started.notified() => {}
    }
    drop(loader);
    dropped_tx.send(()).expect("sink waits");
    // The sink (and its sender) is dropped when the blocking job ends: a disconnected
    // channel is the signal, waited for with a bound.
    let mut last = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(e) => last = Some(e),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(e) => panic!("the blocking job still runs after the drop: {e}"),
        }
    }
    let last = last.expect("events");
    assert_eq!(
        last.stage,
        Stage::Populate,
        "stopped in populate, never reached done"
    );
    assert!(last.bytes_done < total, "{last:?}");
}
