//! Bounds-checked little-endian reads over a file's bytes, or a prefix of them.
//!
//! The cursor knows the whole file's length even when it only holds a prefix, so a
//! read past the prefix but inside the file becomes [`GgufError::NeedMoreBytes`]
//! while a read past the file becomes [`GgufError::Truncated`]. Length checks use
//! the file's remaining bytes, so a prefix parse fails exactly like a full parse.

use super::error::GgufError;

pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    file_len: u64,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8], file_len: u64) -> Self {
        Cursor {
            buf,
            pos: 0,
            file_len,
        }
    }

    #[inline]
    pub(crate) fn pos(&self) -> u64 {
        self.pos as u64
    }

    /// Bytes left in the whole file after the cursor.
    #[inline]
    pub(crate) fn remaining(&self) -> u64 {
        self.file_len.saturating_sub(self.pos as u64)
    }

    #[inline]
    pub(crate) fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Bytes the cursor has already passed over. Callers pass ranges they just
    /// read, so this is always in bounds; an empty slice stands in otherwise.
    pub(crate) fn passed(&self, offset: u64, len: u64) -> &'a [u8] {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = start.saturating_add(usize::try_from(len).unwrap_or(usize::MAX));
        self.buf.get(start..end.min(self.pos)).unwrap_or(&[])
    }

    /// Takes `n` bytes; `what` names the field for the error and runs only on failure.
    #[inline]
    pub(crate) fn take(
        &mut self,
        n: u64,
        what: impl FnOnce() -> String,
    ) -> Result<&'a [u8], GgufError> {
        let start = self.pos as u64;
        let end = start.saturating_add(n);
        if end > self.file_len {
            return Err(GgufError::Truncated {
                offset: start,
                what: what(),
                needed: end,
                file_len: self.file_len,
            });
        }
        if end > self.buf.len() as u64 {
            return Err(GgufError::NeedMoreBytes {
                needed: end,
                have: self.buf.len() as u64,
            });
        }
        // `end <= buf.len()` so both conversions and the slice are in range.
        let end = end as usize;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    #[inline]
    fn array<const N: usize>(
        &mut self,
        what: impl FnOnce() -> String,
    ) -> Result<[u8; N], GgufError> {
        let b = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    #[inline]
    pub(crate) fn u8(&mut self, what: impl FnOnce() -> String) -> Result<u8, GgufError> {
        Ok(self.array::<1>(what)?[0])
    }

    #[inline]
    pub(crate) fn u32(&mut self, what: impl FnOnce() -> String) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    #[inline]
    pub(crate) fn u64(&mut self, what: impl FnOnce() -> String) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// Reads a length-prefixed string's bytes, capping the length at `cap` and at
    /// the bytes remaining before touching them.
    #[inline]
    pub(crate) fn string_bytes(
        &mut self,
        cap: u64,
        what: impl Fn() -> String,
    ) -> Result<&'a [u8], GgufError> {
        let offset = self.pos();
        let len = self.u64(&what)?;
        let max = cap.min(self.remaining());
        if len > max {
            return Err(GgufError::StringTooLong {
                offset,
                what: what(),
                len,
                max,
            });
        }
        self.take(len, what)
    }
}
