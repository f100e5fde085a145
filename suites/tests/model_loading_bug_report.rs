//! The behaviours of the original bug report — "model loading tests time out in CI" — each
//! proved on the real loader, driven through the harness's slow and faulty sources on tokio's
//! paused clock (minutes of slow I/O in milliseconds of wall time) or on the real `bitnet-2b4t`
//! fixture under an environment-aware `#[timeout]`.

use std::io::{Cursor, ErrorKind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gauntlet_engine::fixture::{FixtureSpec, Preset, WeightFormat};
use gauntlet_engine::gguf::Gguf;
use gauntlet_engine::load::{
    CancellationToken, LoadError, LoadGate, LoadMode, LoadOptions, Loader, ProgressEvent, Stage,
};
use gauntlet_harness::mock::{FaultKind, Profile, SlowSource};
use gauntlet_suites::fixtures;

/// A fixture's bytes, made in memory: a slow source serves them. `small` (about 37 MB) is
/// large enough that the loader is past the header and reading tensor data at mid-file.
fn fixture_bytes(preset: Preset) -> Vec<u8> {
    FixtureSpec {
        preset,
        format: WeightFormat::Tq2_0,
        seed: 7,
    }
    .write_to(Vec::new())
    .expect("the fixture writes to memory")
}

const MB: u64 = 1_000_000;

/// A private gate, so concurrently running test processes never share a limit.
fn opts() -> LoadOptions {
    LoadOptions::default()
        .mode(LoadMode::Read)
        .chunk_size(16 << 10)
        .gate(LoadGate::new(4))
}

fn slow(bytes: Vec<u8>, profile: Profile) -> SlowSource<Cursor<Vec<u8>>> {
    SlowSource::new(Cursor::new(bytes), profile)
}

#[test]
#[gauntlet_harness::timeout(class = "model_loading")]
fn model_loading_large_gguf_file() {
    let Some(path) = fixtures::path_or_skip(Preset::Bitnet2b4t, WeightFormat::Tq2_0, 0) else {
        return;
    };
    gauntlet_harness::stage("load bitnet-2b4t (mmap + populate)");
    let events = Arc::new(Mutex::new(Vec::<ProgressEvent>::new()));
    let sink = Arc::clone(&events);
    let model = Loader::new(
        LoadOptions::default()
            .timeout(gauntlet_harness::deadline())
            .gate(LoadGate::new(1))
            .progress(move |e: &ProgressEvent| {
                sink.lock().expect("progress lock").push(*e);
                gauntlet_harness::progress(format!(
                    "{} {}/{}",
                    e.stage, e.bytes_done, e.bytes_total
                ));
            }),
    )
    .load_path(&path)
    .expect("the >1 GiB fixture loads within the model_loading budget");
    let file_len = std::fs::metadata(&path).expect("fixture metadata").len();
    assert!(file_len > 1 << 30, "bitnet-2b4t is {file_len} bytes");
    assert_eq!(model.stats().file_bytes, file_len);
    // Per layer: 3 norms + 2 sub-norms … 11 tensors; plus token_embd, output_norm, output.
    let layers = model
        .head()
        .get_u32("bitnet-b1.58.block_count")
        .expect("block count");
    assert_eq!(layers, 30, "2B4T has 30 layers");
    assert_eq!(model.head().tensor_infos().len(), 30 * 11 + 3);
    let events = events.lock().expect("progress lock");
    let last = events.last().expect("progress was reported");
    assert_eq!(last.stage, Stage::Done);
    assert_eq!(last.bytes_done, last.bytes_total);
}

#[test]
#[gauntlet_harness::timeout(class = "model_loading")]
fn model_validation_with_timeout() {
    let Some(path) = fixtures::path_or_skip(Preset::Bitnet2b4t, WeightFormat::Tq2_0, 0) else {
        return;
    };
    gauntlet_harness::stage("validate bitnet-2b4t");
    let mapped = Gguf::open(&path).expect("the fixture validates");
    assert_eq!(mapped.gguf().architecture(), Some("bitnet-b1.58"));
    // The same file cut inside its tensor table is an error naming the offset, not a hang.
    gauntlet_harness::stage("validate the first 4 KiB alone");
    let header = {
        use std::io::Read;
        let mut head = vec![0u8; 4096];
        let mut file = std::fs::File::open(&path).expect("open fixture");
        file.read_exact(&mut head)
            .expect("the fixture is longer than 4 KiB");
        head
    };
    let err = Gguf::parse(&header).expect_err("4 KiB cannot hold the tensor table");
    assert!(err.offset().is_some(), "the error names an offset: {err}");
}

#[tokio::test(start_paused = true)]
async fn model_loading_timeout_respected_paused_clock() {
    let bytes = fixture_bytes(Preset::Small);
    let len = bytes.len() as u64;
    // 10 MB/s: the whole file needs more than three virtual seconds; the budget is two.
    let budget = Duration::from_secs(2);
    let source = slow(bytes, Profile::new().throughput(10 * MB));
    let started = tokio::time::Instant::now();
    let err = Loader::new(opts().timeout(budget))
        .load_reader_async(source)
        .await
        .expect_err("a source slower than the budget times out");
    let elapsed = started.elapsed();
    let LoadError::TimedOut {
        stage,
        bytes_done,
        bytes_total,
        ..
    } = err
    else {
        panic!("expected TimedOut, got {err}");
    };
    assert_eq!(bytes_total, len);
    assert_eq!(stage, Stage::Read);
    assert!(
        elapsed >= budget && elapsed < budget + Duration::from_millis(200),
        "timed out at virtual {elapsed:?} for a {budget:?} budget"
    );
    // At 10 MB/s for 2 s, about 20 MB arrived — and no more than one chunk beyond.
    assert!(
        (19 * MB..=21 * MB).contains(&bytes_done),
        "{bytes_done} bytes done at the deadline"
    );
}

#[tokio::test(start_paused = true)]
async fn stall_longer_than_the_budget_times_out_at_the_budget_paused_clock() {
    let bytes = fixture_bytes(Preset::Small);
    let stall_at = bytes.len() as u64 / 2;
    let budget = Duration::from_secs(30);
    let source = slow(
        bytes.clone(),
        Profile::new()
            .throughput(100 * MB)
            .stall(stall_at, Duration::from_secs(600)),
    );
    let started = tokio::time::Instant::now();
    let err = Loader::new(opts().timeout(budget))
        .load_reader_async(source)
        .await
        .expect_err("a ten-minute stall cannot finish in 30 s");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= budget && elapsed < budget + Duration::from_secs(1),
        "the stall ended the load at virtual {elapsed:?}, not at the {budget:?} budget"
    );
    match err {
        LoadError::TimedOut {
            bytes_done, stage, ..
        } => {
            assert_eq!(stage, Stage::Read);
            assert_eq!(
                bytes_done, stall_at,
                "progress stops exactly where the source stalled"
            );
        }
        other => panic!("expected TimedOut, got {other}"),
    }
    insta::assert_snapshot!(
        "stalled_load_timeout_message",
        Loader::new(opts().timeout(budget))
            .load_reader_async(slow(
                bytes,
                Profile::new()
                    .throughput(100 * MB)
                    .stall(stall_at, Duration::from_secs(600)),
            ))
            .await
            .expect_err("same stall, same message")
            .to_string()
    );
}

#[tokio::test(start_paused = true)]
async fn model_loading_cancellation_paused_clock() {
    let bytes = fixture_bytes(Preset::Small);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        trigger.cancel();
    });
    let source = slow(bytes, Profile::new().throughput(10 * MB));
    let started = tokio::time::Instant::now();
    let err = Loader::new(opts().timeout(Duration::from_secs(60)).cancel_token(cancel))
        .load_reader_async(source)
        .await
        .expect_err("cancelled mid-load");
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "cancel took effect at virtual {:?}",
        started.elapsed()
    );
    match err {
        LoadError::Cancelled {
            bytes_done, stage, ..
        } => {
            assert_eq!(stage, Stage::Read);
            assert!(
                (9 * MB..=11 * MB).contains(&bytes_done),
                "{bytes_done} bytes done after one second at 10 MB/s"
            );
        }
        other => panic!("expected Cancelled, got {other}"),
    }
}

#[tokio::test(start_paused = true)]
async fn connection_reset_at_half_is_a_typed_error_naming_the_offset_paused_clock() {
    let bytes = fixture_bytes(Preset::Small);
    let half = bytes.len() as u64 / 2;
    let source = slow(
        bytes,
        Profile::new()
            .throughput(100 * MB)
            .fail_at(half, FaultKind::ConnectionReset),
    );
    let err = Loader::new(opts().timeout(Duration::from_secs(60)))
        .load_reader_async(source)
        .await
        .expect_err("the reset reaches the caller");
    let LoadError::Io { source, stage, .. } = &err else {
        panic!("expected an I/O error, got {err}");
    };
    assert_eq!(source.kind(), ErrorKind::ConnectionReset);
    assert_eq!(*stage, Stage::Read);
    assert!(
        err.to_string().contains(&half.to_string()),
        "the message names offset {half}: {err}"
    );
}

#[tokio::test(start_paused = true)]
async fn concurrent_model_loading_is_bounded_by_concurrent_loads_paused_clock() {
    let bytes = fixture_bytes(Preset::Tiny);
    let gate = LoadGate::new(2);
    let peak = Arc::new(AtomicUsize::new(0));
    let mut loads = Vec::new();
    for _ in 0..5 {
        let (gate, peak) = (gate.clone(), peak.clone());
        let source = slow(bytes.clone(), Profile::new().throughput(1_000_000));
        loads.push(tokio::spawn(async move {
            let watched = gate.clone();
            let opts = opts().gate(gate).timeout(Duration::from_secs(60)).progress(
                move |_: &ProgressEvent| {
                    peak.fetch_max(watched.running(), Ordering::SeqCst);
                },
            );
            Loader::new(opts).load_reader_async(source).await
        }));
    }
    let started = tokio::time::Instant::now();
    for load in loads {
        load.await.expect("task").expect("every load finishes");
    }
    // Each load needs ~0.6 virtual seconds; five through a gate of two take three rounds.
    let one = Duration::from_secs_f64(bytes.len() as f64 / 1e6);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= one * 3 && elapsed < one * 3 + Duration::from_millis(500),
        "five loads took virtual {elapsed:?}; one takes {one:?}, the gate allows two at once"
    );
    assert_eq!(
        peak.load(Ordering::SeqCst),
        2,
        "at most (and at times exactly) two ran at once"
    );
    assert_eq!(gate.running(), 0, "every permit came back");
}
