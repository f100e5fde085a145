//! Async reader loads on tokio's paused clock: slow and stalled sources finish (or
//! time out) in virtual time, so these tests take milliseconds of wall time.

use std::io::{Cursor, SeekFrom};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use gauntlet_engine::gguf::{GgmlType, GgufBuilder, MetaValue};
use gauntlet_engine::load::{LoadError, LoadGate, LoadOptions, Loader, Stage};
use tokio::io::{AsyncRead, AsyncSeek, ReadBuf};
use tokio::time::Sleep;

fn model_bytes(mib: u64) -> Vec<u8> {
    let mut b = GgufBuilder::new();
    b.metadata("general.architecture", MetaValue::String("llama".into()))
        .expect("meta");
    for t in 0..mib {
        b.tensor(&format!("blk.{t}.weight"), &[256 * 1024], GgmlType::F32)
            .expect("tensor");
    }
    let mut w = b.start(Vec::new()).expect("start");
    for t in 0..mib {
        w.write_data(&vec![t as u8; 1 << 20]).expect("data");
    }
    w.finish().expect("finish")
}

/// Serves bytes at `bytes_per_s` of tokio time (a token bucket refilled every 10 ms);
/// stops serving forever after `stall_after` bytes.
struct SlowSource {
    data: Cursor<Vec<u8>>,
    bytes_per_s: f64,
    stall_after: u64,
    start: Option<tokio::time::Instant>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl SlowSource {
    fn new(data: Vec<u8>, bytes_per_s: usize) -> Self {
        SlowSource {
            data: Cursor::new(data),
            bytes_per_s: bytes_per_s as f64,
            stall_after: u64::MAX,
            start: None,
            sleep: None,
        }
    }
}

impl AsyncRead for SlowSource {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.data.position() >= this.stall_after {
            return Poll::Pending; // never woken: a stalled network mount
        }
        let start = *this.start.get_or_insert_with(tokio::time::Instant::now);
        loop {
            if let Some(sleep) = this.sleep.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.sleep = None;
            }
            let earned = (start.elapsed().as_secs_f64() * this.bytes_per_s) as u64;
            let allowed = earned.saturating_sub(this.data.position());
            if allowed == 0 {
                this.sleep = Some(Box::pin(tokio::time::sleep(Duration::from_millis(10))));
                continue;
            }
            let pos = this.data.position() as usize;
            let src = this.data.get_ref();
            let n = buf
                .remaining()
                .min(usize::try_from(allowed).unwrap_or(usize::MAX))
                .min(src.len() - pos.min(src.len()));
            buf.put_slice(&src[pos..pos + n]);
            this.data.set_position((pos + n) as u64);
            return Poll::Ready(Ok(()));
        }
    }
}

impl AsyncSeek for SlowSource {
    fn start_seek(mut self: Pin<&mut Self>, pos: SeekFrom) -> std::io::Result<()> {
        std::io::Seek::seek(&mut self.data, pos).map(|_| ())
    }

    fn poll_complete(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<u64>> {
        Poll::Ready(Ok(self.data.position()))
    }
}

fn opts() -> LoadOptions {
    LoadOptions::default()
        .gate(LoadGate::new(4))
        .chunk_size(1 << 20)
}

#[tokio::test(start_paused = true)]
async fn slow_source_loads_in_virtual_time_paused_clock() {
    let bytes = model_bytes(8);
    let total = bytes.len() as f64;
    let wall = std::time::Instant::now();
    let model = Loader::new(opts().timeout(Duration::from_secs(60)))
        .load_reader_async(SlowSource::new(bytes, 20_000_000))
        .await
        .expect("loads");
    let virtual_s = model.stats().elapsed.as_secs_f64();
    let expected = total / 20e6;
    assert!(
        (virtual_s - expected).abs() < expected * 0.1 + 0.05,
        "{virtual_s} vs {expected}"
    );
    assert!(
        wall.elapsed() < Duration::from_secs(10),
        "virtual time, not wall time"
    );
    assert_eq!(model.tensor("blk.7.weight").map(|d| d[0]), Some(7));
}

#[tokio::test(start_paused = true)]
async fn slow_source_times_out_in_read_at_the_budget_paused_clock() {
    let bytes = model_bytes(8);
    let err = Loader::new(opts().timeout(Duration::from_millis(200)))
        .load_reader_async(SlowSource::new(bytes, 20_000_000))
        .await
        .expect_err("too slow");
    match err {
        LoadError::TimedOut {
            stage,
            elapsed,
            bytes_done,
            ..
        } => {
            assert_eq!(stage, Stage::Read);
            assert!(
                elapsed >= Duration::from_millis(200) && elapsed < Duration::from_millis(220),
                "{elapsed:?}"
            );
            assert!(
                bytes_done > 3_000_000 && bytes_done < 4_400_000,
                "{bytes_done}"
            );
        }
        other => panic!("expected TimedOut, got {other}"),
    }
}

#[tokio::test(start_paused = true)]
async fn stalled_source_times_out_within_budget_paused_clock() {
    let mut src = SlowSource::new(model_bytes(4), 100_000_000);
    src.stall_after = 2 << 20;
    let err = Loader::new(opts().timeout(Duration::from_secs(5)))
        .load_reader_async(src)
        .await
        .expect_err("stalled");
    assert!(
        matches!(err, LoadError::TimedOut { stage: Stage::Read, elapsed, .. } if elapsed == Duration::from_secs(5)),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn cancel_stops_an_async_reader_load() {
    let token = gauntlet_engine::load::CancellationToken::new();
    let loader = Loader::new(opts().cancel_token(token.clone()));
    let load = loader.load_reader_async(SlowSource::new(model_bytes(8), 10_000_000));
    let cancel = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel();
    };
    let (res, ()) = tokio::join!(load, cancel);
    match res {
        Err(LoadError::Cancelled { elapsed, stage, .. }) => {
            assert_eq!(elapsed, Duration::from_millis(300));
            assert_eq!(stage, Stage::Read);
        }
        other => panic!("expected Cancelled, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn async_gate_wait_is_bounded_by_the_deadline_paused_clock() {
    let gate = LoadGate::new(1);
    let _held = gate.try_acquire().expect("slot");
    let err = Loader::new(opts().gate(gate).timeout(Duration::from_secs(3)))
        .load_reader_async(SlowSource::new(model_bytes(1), 10_000_000))
        .await
        .expect_err("queued too long");
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
}
