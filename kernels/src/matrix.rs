//! A ternary weight matrix viewed in place over borrowed (e.g. memory-mapped) bytes.

use crate::error::FormatError;
use crate::format::{TernaryFormat, i2_s};

/// Largest row length the kernels accept: with codes 0..=2 and int8 activations a
/// row's unsigned dot stays below 2³¹ (2 · 128 · 2²³ = 2³¹ would not).
pub const MAX_K: usize = (1 << 23) - 256;

/// `m` rows of `k` ternary weights in one format, without copying the bytes.
#[derive(Debug, Clone, Copy)]
pub struct TernaryMatrix<'a> {
    format: TernaryFormat,
    m: usize,
    k: usize,
    row_bytes: usize,
    codes: &'a [u8],
    tensor_scale: f32,
}

impl<'a> TernaryMatrix<'a> {
    /// Views `bytes` — a whole tensor as stored in GGUF (for I2_S the codes and the
    /// 32-byte scale trailer) — as an `m × k` matrix. Fails with a typed error when `k`
    /// is not a multiple of the format's block or the byte length does not match.
    pub fn new(
        format: TernaryFormat,
        m: usize,
        k: usize,
        bytes: &'a [u8],
    ) -> Result<Self, FormatError> {
        format.check_multiple("row length K", k)?;
        if k > MAX_K {
            return Err(FormatError::ShapeTooLarge {
                m,
                k,
                reason: "K above 8 Mi weights would overflow int32 accumulators",
            });
        }
        let n = m.checked_mul(k).ok_or(FormatError::ShapeTooLarge {
            m,
            k,
            reason: "m × k overflows",
        })?;
        let expected = format.tensor_bytes(n)?;
        format.check_len("tensor data", bytes, expected, n)?;
        let row_bytes = format.row_bytes(k)?;
        let (codes, tensor_scale) = match format {
            TernaryFormat::I2S => (&bytes[..n / 4], i2_s::read_scale(bytes, n)?),
            _ => (bytes, 1.0),
        };
        Ok(Self {
            format,
            m,
            k,
            row_bytes,
            codes,
            tensor_scale,
        })
    }

    /// The weight format.
    pub fn format(&self) -> TernaryFormat {
        self.format
    }

    /// Rows (outputs).
    pub fn m(&self) -> usize {
        self.m
    }

    /// Columns (inputs).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Bytes of weight data read per GEMV (the codes, and per-block scales where present).
    pub fn weight_bytes(&self) -> usize {
        self.codes.len()
    }

    /// Row `i`'s bytes (blocks with their scales; I2_S codes only).
    pub fn row(&self, i: usize) -> &'a [u8] {
        &self.codes[i * self.row_bytes..(i + 1) * self.row_bytes]
    }

    /// Rows `rows`' bytes, one contiguous stretch.
    pub(crate) fn rows(&self, rows: std::ops::Range<usize>) -> &'a [u8] {
        &self.codes[rows.start * self.row_bytes..rows.end * self.row_bytes]
    }

    /// I2_S's per-tensor scale (1.0 for formats with per-block scales).
    pub fn tensor_scale(&self) -> f32 {
        self.tensor_scale
    }
}
