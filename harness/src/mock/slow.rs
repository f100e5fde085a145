//! [`SlowSource`]: a reader that serves its inner reader slowly and faultily.

use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncSeek, ReadBuf};

use super::profile::Profile;

/// Counters of what a source served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes handed to the caller.
    pub bytes_served: u64,
    /// Successful reads (including those returning 0 at the end).
    pub reads: u64,
    /// Stalls that fired.
    pub stalls_hit: u64,
    /// Reads that returned the injected error.
    pub errors: u64,
    /// Total delay the profile imposed (virtual time in async mode).
    pub delay: Duration,
}

#[derive(Debug, Default)]
struct Counters {
    bytes: AtomicU64,
    reads: AtomicU64,
    stalls: AtomicU64,
    errors: AtomicU64,
    delay_nanos: AtomicU64,
}

/// Reads a source's [`Stats`] after the source itself was moved into the code under test.
#[derive(Debug, Clone)]
pub struct StatsHandle(Arc<Counters>);

impl StatsHandle {
    /// The counters now.
    pub fn snapshot(&self) -> Stats {
        let c = &self.0;
        Stats {
            bytes_served: c.bytes.load(Ordering::Relaxed),
            reads: c.reads.load(Ordering::Relaxed),
            stalls_hit: c.stalls.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            delay: Duration::from_nanos(c.delay_nanos.load(Ordering::Relaxed)),
        }
    }
}

/// How late a read may come and still be paced from the previous deadline; a caller that
/// paused longer than this starts a new schedule (idle time is not banked as credit).
const SCHEDULE_SLACK: Duration = Duration::from_millis(5);

/// What to do for the next read.
enum Step {
    Wait(Duration),
    Fail(io::Error),
    End,
    Read { len: usize, delay: Duration },
}

/// Wraps a reader and serves it per a [`Profile`]. Implements std `Read + Seek` (delays are
/// `thread::sleep`) and tokio `AsyncRead + AsyncSeek` (delays are `tokio::time::sleep`, so a
/// paused clock makes them virtual).
#[derive(Debug)]
pub struct SlowSource<R> {
    inner: R,
    profile: Profile,
    pos: u64,
    stalls_done: usize,
    rng: u64,
    counters: Arc<Counters>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    pending: Option<usize>,
    /// When the previous delay ended on the schedule. Each delay is added to this rather
    /// than to "now", so timer granularity (tokio rounds sleeps up to the millisecond) does
    /// not accumulate: 2048 reads of 52.4 ms take 107.4 s, not 2048 × 53 ms.
    due_async: Option<tokio::time::Instant>,
    due_sync: Option<std::time::Instant>,
}

impl<R> SlowSource<R> {
    /// Wraps `inner`, positioned at offset 0.
    pub fn new(inner: R, profile: Profile) -> Self {
        let rng = profile.seed ^ 0x9E37_79B9_7F4A_7C15;
        Self {
            inner,
            profile,
            pos: 0,
            stalls_done: 0,
            rng,
            counters: Arc::default(),
            sleep: None,
            pending: None,
            due_async: None,
            due_sync: None,
        }
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        self.stats_handle().snapshot()
    }

    /// A handle that keeps reading the counters after the source is moved.
    pub fn stats_handle(&self) -> StatsHandle {
        StatsHandle(Arc::clone(&self.counters))
    }

    /// The current offset.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn next_random(&mut self) -> u64 {
        // splitmix64: tiny, good enough for jitter, and stable across platforms for replay.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn plan(&mut self, want: usize) -> Step {
        let pos = self.pos;
        if let Some((offset, kind)) = self.profile.fault
            && pos >= offset
        {
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
            let message = format!("injected {kind:?} at offset {offset} (read position {pos})");
            return Step::Fail(io::Error::new(kind.error_kind(), message));
        }
        if self.profile.truncate_at.is_some_and(|t| pos >= t) {
            return Step::End;
        }
        if let Some(stall) = self.profile.stalls.get(self.stalls_done).copied()
            && pos >= stall.offset
        {
            self.stalls_done += 1;
            self.counters.stalls.fetch_add(1, Ordering::Relaxed);
            return Step::Wait(stall.duration);
        }
        // Stop each read at the next event so it fires at its exact offset.
        let mut limit = want as u64;
        if let Some(max) = self.profile.max_read {
            limit = limit.min(max as u64);
        }
        let events = [
            self.profile.fault.map(|(o, _)| o),
            self.profile.truncate_at,
            self.profile.stalls.get(self.stalls_done).map(|s| s.offset),
        ];
        for event in events.into_iter().flatten() {
            limit = limit.min(event.saturating_sub(pos));
        }
        let len = usize::try_from(limit).unwrap_or(want);
        let mut delay = self.profile.latency;
        if let Some(bps) = self.profile.throughput {
            let nanos = u128::from(limit) * 1_000_000_000 / u128::from(bps);
            delay += Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        }
        let jitter = self.profile.jitter.as_nanos();
        if jitter > 0 {
            let extra = u128::from(self.next_random()) % (jitter + 1);
            delay += Duration::from_nanos(u64::try_from(extra).unwrap_or(u64::MAX));
        }
        Step::Read { len, delay }
    }

    fn record_delay(&self, delay: Duration) {
        let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        self.counters
            .delay_nanos
            .fetch_add(nanos, Ordering::Relaxed);
    }

    fn served(&mut self, n: usize) {
        self.pos += n as u64;
        self.counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
    }

    fn next_due_async(&mut self, delay: Duration) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        let base = match self.due_async {
            Some(due) if due + SCHEDULE_SLACK >= now => due,
            _ => now,
        };
        let due = base + delay;
        self.due_async = Some(due);
        due
    }

    fn sleep_sync(&mut self, delay: Duration) {
        let now = std::time::Instant::now();
        let base = match self.due_sync {
            Some(due) if due + SCHEDULE_SLACK >= now => due,
            _ => now,
        };
        let due = base + delay;
        self.due_sync = Some(due);
        std::thread::sleep(due.saturating_duration_since(now));
    }

    fn reset_plan(&mut self) {
        self.sleep = None;
        self.pending = None;
    }
}

impl<R: Read> Read for SlowSource<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.plan(buf.len()) {
                Step::Wait(d) => {
                    self.record_delay(d);
                    self.sleep_sync(d);
                }
                Step::Fail(e) => return Err(e),
                Step::End => {
                    self.served(0);
                    return Ok(0);
                }
                Step::Read { len, delay } => {
                    self.record_delay(delay);
                    self.sleep_sync(delay);
                    let n = self.inner.read(&mut buf[..len])?;
                    self.served(n);
                    return Ok(n);
                }
            }
        }
    }
}

impl<R: Seek> Seek for SlowSource<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.reset_plan();
        self.pos = self.inner.seek(pos)?;
        Ok(self.pos)
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for SlowSource<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if let Some(sleep) = this.sleep.as_mut() {
                ready!(sleep.as_mut().poll(cx));
                this.sleep = None;
            }
            if let Some(len) = this.pending {
                let len = len.min(buf.remaining());
                let slot = &mut buf.initialize_unfilled_to(len)[..len];
                let mut sub = ReadBuf::new(slot);
                let polled = Pin::new(&mut this.inner).poll_read(cx, &mut sub);
                let result = ready!(polled);
                this.pending = None;
                result?;
                let n = sub.filled().len();
                buf.advance(n);
                this.served(n);
                return Poll::Ready(Ok(()));
            }
            match this.plan(buf.remaining()) {
                Step::Wait(d) => {
                    this.record_delay(d);
                    this.sleep = Some(Box::pin(tokio::time::sleep_until(this.next_due_async(d))));
                }
                Step::Fail(e) => return Poll::Ready(Err(e)),
                Step::End => {
                    this.served(0);
                    return Poll::Ready(Ok(()));
                }
                Step::Read { len, delay } => {
                    this.record_delay(delay);
                    if !delay.is_zero() {
                        let due = this.next_due_async(delay);
                        this.sleep = Some(Box::pin(tokio::time::sleep_until(due)));
                    }
                    this.pending = Some(len);
                }
            }
        }
    }
}

impl<R: AsyncSeek + Unpin> AsyncSeek for SlowSource<R> {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        let this = self.get_mut();
        this.reset_plan();
        Pin::new(&mut this.inner).start_seek(position)
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let this = self.get_mut();
        let pos = ready!(Pin::new(&mut this.inner).poll_complete(cx))?;
        this.pos = pos;
        Poll::Ready(Ok(pos))
    }
}
