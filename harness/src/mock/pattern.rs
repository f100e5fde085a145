//! Deterministic bytes of any length, generated on demand.

use std::io::{self, Read, Seek, SeekFrom};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncSeek, ReadBuf};

/// The pattern repeats every 251 bytes: a prime, so it never lines up with power-of-two
/// chunk sizes and a byte served from the wrong offset shows.
const PERIOD: usize = 251;

const TABLE: [u8; PERIOD] = {
    let mut t = [0u8; PERIOD];
    let mut i = 0;
    while i < PERIOD {
        t[i] = i as u8;
        i += 1;
    }
    t
};

/// A reader of `len` bytes where byte `i` is [`PatternSource::byte_at`]`(i)`; nothing is
/// allocated, so a 2 GiB source costs no memory.
#[derive(Debug, Clone)]
pub struct PatternSource {
    len: u64,
    pos: u64,
}

impl PatternSource {
    /// A source of `len` bytes.
    pub fn new(len: u64) -> Self {
        Self { len, pos: 0 }
    }

    /// The byte at `offset`.
    pub fn byte_at(offset: u64) -> u8 {
        TABLE[(offset % PERIOD as u64) as usize]
    }

    /// Total length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the source is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn fill(&mut self, buf: &mut [u8]) -> usize {
        let left = self.len.saturating_sub(self.pos);
        let n = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
        let mut written = 0;
        while written < n {
            let phase = ((self.pos + written as u64) % PERIOD as u64) as usize;
            let take = (PERIOD - phase).min(n - written);
            buf[written..written + take].copy_from_slice(&TABLE[phase..phase + take]);
            written += take;
        }
        self.pos += n as u64;
        n
    }

    fn seek_to(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("seek to {pos:?} from {} is before 0", self.pos),
            )
        })?;
        self.pos = target;
        Ok(target)
    }
}

impl Read for PatternSource {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.fill(buf))
    }
}

impl Seek for PatternSource {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.seek_to(pos)
    }
}

impl AsyncRead for PatternSource {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = this.fill(buf.initialize_unfilled());
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncSeek for PatternSource {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        self.get_mut().seek_to(position).map(|_| ())
    }

    fn poll_complete(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Poll::Ready(Ok(self.pos))
    }
}
