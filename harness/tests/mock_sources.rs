//! SlowSource and MockLoader: delays on tokio's paused clock, exact fault offsets, counters.

use std::io::{ErrorKind, SeekFrom};
use std::time::{Duration, Instant};

use gauntlet_harness::mock::{FaultKind, MockLoader, PatternSource, Profile, SlowSource};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

const GIB: u64 = 1024 * 1024 * 1024;

/// Reads to the end (or the first error) in 1 MiB chunks, checking every byte's offset.
async fn drain<R: tokio::io::AsyncRead + Unpin>(
    source: &mut R,
    start: u64,
) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = start;
    loop {
        let n = AsyncReadExt::read(source, &mut buf).await?;
        if n == 0 {
            return Ok(offset - start);
        }
        assert_eq!(buf[0], PatternSource::byte_at(offset), "byte at {offset}");
        assert_eq!(buf[n - 1], PatternSource::byte_at(offset + n as u64 - 1));
        offset += n as u64;
    }
}

#[tokio::test(start_paused = true)]
async fn two_gib_at_20_mb_per_s_takes_107_virtual_seconds_paused_clock() {
    let wall = Instant::now();
    let virtual_start = tokio::time::Instant::now();
    let mut source = SlowSource::new(
        PatternSource::new(2 * GIB),
        Profile::new().throughput(20_000_000),
    );
    let read = drain(&mut source, 0).await.expect("no faults configured");
    let virtual_elapsed = virtual_start.elapsed();
    assert_eq!(read, 2 * GIB);
    assert_eq!(source.stats().bytes_served, 2 * GIB);
    let expected = 2.0 * GIB as f64 / 20e6;
    assert!(
        (virtual_elapsed.as_secs_f64() - expected).abs() < 0.5,
        "{virtual_elapsed:?}"
    );
    assert!(
        wall.elapsed() < Duration::from_secs(20),
        "wall {:?}",
        wall.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn connection_reset_at_half_names_the_offset_paused_clock() {
    let len = 64 * 1024 * 1024;
    let profile = Profile::new()
        .throughput(100_000_000)
        .fail_at(len / 2, FaultKind::ConnectionReset);
    let mut source = SlowSource::new(PatternSource::new(len), profile);
    let error = drain(&mut source, 0).await.expect_err("reset");
    assert_eq!(error.kind(), ErrorKind::ConnectionReset);
    assert!(
        error.to_string().contains(&format!("offset {}", len / 2)),
        "{error}"
    );
    assert_eq!(source.stats().bytes_served, len / 2);
    assert_eq!(source.stats().errors, 1);
}

#[tokio::test(start_paused = true)]
async fn stall_fires_once_at_its_offset_paused_clock() {
    let profile = Profile::new().stall(1000, Duration::from_secs(90));
    let mut source = SlowSource::new(PatternSource::new(4096), profile);
    let start = tokio::time::Instant::now();
    let mut first = vec![0u8; 4096];
    let n = AsyncReadExt::read(&mut source, &mut first)
        .await
        .expect("read");
    assert_eq!(n, 1000, "reads stop at the stall offset");
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(drain(&mut source, 1000).await.expect("rest"), 3096);
    assert!(start.elapsed() >= Duration::from_secs(90));
    assert_eq!(source.stats().stalls_hit, 1);
}

#[tokio::test(start_paused = true)]
async fn truncation_ends_early_and_seek_moves_the_position_paused_clock() {
    let mut source = SlowSource::new(PatternSource::new(10_000), Profile::new().truncate_at(6000));
    AsyncSeekExt::seek(&mut source, SeekFrom::Start(5000))
        .await
        .expect("seek");
    assert_eq!(drain(&mut source, 5000).await.expect("read"), 1000);
}

#[tokio::test(start_paused = true)]
async fn jitter_is_reproducible_from_its_seed_paused_clock() {
    async fn total_delay(seed: u64) -> Duration {
        let profile = Profile::new()
            .latency(Duration::from_millis(5))
            .jitter(Duration::from_millis(20), seed)
            .max_read(100);
        let mut source = SlowSource::new(PatternSource::new(10_000), profile);
        drain(&mut source, 0).await.expect("read");
        source.stats().delay
    }
    let (a, b, c) = (
        total_delay(7).await,
        total_delay(7).await,
        total_delay(8).await,
    );
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(
        a >= Duration::from_millis(500),
        "100 reads × 5 ms latency at least: {a:?}"
    );
}

#[test]
fn sync_read_and_seek_serve_the_right_bytes() {
    let profile = Profile::new()
        .max_read(333)
        .fail_at(9000, FaultKind::UnexpectedEof);
    let mut source = SlowSource::new(PatternSource::new(10_000), profile);
    std::io::Seek::seek(&mut source, SeekFrom::Start(8000)).expect("seek");
    let mut buf = vec![0u8; 4096];
    let mut offset = 8000u64;
    let error = loop {
        match std::io::Read::read(&mut source, &mut buf) {
            Ok(n) => {
                assert!(n <= 333);
                for (i, byte) in buf[..n].iter().enumerate() {
                    assert_eq!(*byte, PatternSource::byte_at(offset + i as u64));
                }
                offset += n as u64;
            }
            Err(e) => break e,
        }
    };
    assert_eq!(offset, 9000);
    assert_eq!(error.kind(), ErrorKind::UnexpectedEof);
    assert!(error.to_string().contains("offset 9000"));
}

#[tokio::test(start_paused = true)]
async fn mock_loader_counts_fails_and_allocates_paused_clock() {
    let loader = MockLoader::new(Duration::from_secs(30))
        .allocate(4096)
        .fail_on_attempt(2);
    let start = tokio::time::Instant::now();
    let first = loader.load_async().await.expect("attempt 1 succeeds");
    assert_eq!((first.attempt, first.data.len()), (1, 4096));
    assert_eq!(
        loader
            .load_async()
            .await
            .expect_err("attempt 2 fails")
            .attempt,
        2
    );
    assert_eq!(loader.calls(), 2);
    assert_eq!(start.elapsed(), Duration::from_secs(60));
}

#[test]
fn mock_loader_panics_on_the_configured_attempt() {
    let loader = MockLoader::new(Duration::ZERO).panic_on_attempt(1);
    let clone = loader.clone();
    let result = std::panic::catch_unwind(move || clone.load());
    assert!(result.is_err());
    assert_eq!(loader.calls(), 1, "clones share the counter");
}
