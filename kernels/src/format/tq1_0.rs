//! TQ1_0 (GGUF type 34): 256 weights in 54 bytes — `qs[48]` holding 5 trits each,
//! `qh[4]` holding 4 trits each, then an f16 scale `d` (the block's absmax).
//!
//! Layout, as llama.cpp's `quantize_row_tq1_0_ref` writes it (codes `x + 1` in 0..=2):
//! - `qs[m]`, m < 32: weights `m + 32n` (n = 0..5) as base-3 digits, n = 0 most significant;
//! - `qs[32 + m]`, m < 16: weights `160 + m + 16n` likewise;
//! - `qh[j]`, j < 4: weights `240 + j + 4n` (n = 0..4), then ×3 so the first is most significant.
//!
//! Each byte stores `ceil(q · 256 / 243)`, so trit `n` comes back as the top bits of
//! `(byte · 3ⁿ mod 256) · 3`: one multiply per trit instead of a division.

use half::f16;

use super::TernaryFormat;
use crate::error::FormatError;

/// Weights per block.
pub const BLOCK_WEIGHTS: usize = 256;
/// Bytes per block: 48 + 4 packed bytes and an f16 scale.
pub const BLOCK_BYTES: usize = 54;
const FORMAT: TernaryFormat = TernaryFormat::Tq1_0;
const POW3: [u8; 5] = [1, 3, 9, 27, 81];

/// A zero-copy view of one TQ1_0 block inside borrowed (e.g. memory-mapped) bytes.
#[derive(Debug, Clone, Copy)]
pub struct Block<'a> {
    bytes: &'a [u8; BLOCK_BYTES],
}

/// Trit `n` (0 = most significant) of a byte written with the ×256/243 scaling.
#[inline]
fn trit(byte: u8, n: usize) -> u8 {
    let q = byte.wrapping_mul(POW3[n]);
    ((u16::from(q) * 3) >> 8) as u8
}

impl<'a> Block<'a> {
    /// The 48 bytes of 5 trits each.
    pub fn qs(&self) -> &'a [u8] {
        &self.bytes[..48]
    }

    /// The 4 bytes of 4 trits each.
    pub fn qh(&self) -> &'a [u8] {
        &self.bytes[48..52]
    }

    /// The block scale.
    pub fn d(&self) -> f16 {
        f16::from_le_bytes([self.bytes[52], self.bytes[53]])
    }

    /// The ternary code (−1, 0 or +1) of weight `j` (0..256).
    pub fn code(&self, j: usize) -> i8 {
        let (byte, n) = if j < 160 {
            (self.bytes[j % 32], j / 32)
        } else if j < 240 {
            (self.bytes[32 + (j - 160) % 16], (j - 160) / 16)
        } else {
            (self.bytes[48 + (j - 240) % 4], (j - 240) / 4)
        };
        trit(byte, n) as i8 - 1
    }

    /// Decodes the block into `out` (256 values), as `dequantize_row_tq1_0` does.
    pub fn dequantize_into(&self, out: &mut [f32; BLOCK_WEIGHTS]) {
        let d = self.d().to_f32();
        for (j, o) in out.iter_mut().enumerate() {
            *o = f32::from(self.code(j)) * d;
        }
    }
}

/// Views `bytes` (a whole number of blocks) as TQ1_0 blocks without copying.
pub fn blocks(bytes: &[u8]) -> Result<impl ExactSizeIterator<Item = Block<'_>>, FormatError> {
    let (chunks, rest) = bytes.as_chunks::<BLOCK_BYTES>();
    if !rest.is_empty() {
        return Err(FormatError::ByteLength {
            format: FORMAT,
            what: "block data (not a whole number of 54-byte blocks)",
            actual: bytes.len(),
            expected: chunks.len() * BLOCK_BYTES,
            weights: chunks.len() * BLOCK_WEIGHTS,
        });
    }
    Ok(chunks.iter().map(|bytes| Block { bytes }))
}

/// Quantizes `x` (a multiple of 256 values) exactly as `quantize_row_tq1_0_ref`.
pub fn quantize(x: &[f32]) -> Result<Vec<u8>, FormatError> {
    super::quantize_tq(FORMAT, x, pack_block)
}

/// Decodes `n` weights from `bytes` (exactly `n / 256 · 54` bytes).
pub fn dequantize(bytes: &[u8], n: usize) -> Result<Vec<f32>, FormatError> {
    super::dequantize_tq(FORMAT, bytes, n, blocks, |b, out| b.dequantize_into(out))
}

/// Appends the blocks for `codes` (−1/0/+1, a multiple of 256) with every block's scale
/// set to `scale` (stored as f16), so that weight = code · f16(scale).
pub fn encode_codes(codes: &[i8], scale: f32, out: &mut Vec<u8>) -> Result<(), FormatError> {
    super::encode_codes_tq(FORMAT, codes, scale, out, pack_block)
}

/// Scales a base-3 number of up to 5 digits into a byte: ceil(q · 256 / 243).
#[inline]
fn scale_trits(q: u16) -> u8 {
    (q * 256).div_ceil(243) as u8
}

fn pack_block(codes: &[u8; BLOCK_WEIGHTS], d: f16, out: &mut Vec<u8>) {
    let digits = |base: usize, stride: usize, count: usize| -> u16 {
        (0..count).fold(0u16, |q, n| q * 3 + u16::from(codes[base + n * stride]))
    };
    for m in 0..32 {
        out.push(scale_trits(digits(m, 32, 5)));
    }
    for m in 0..16 {
        out.push(scale_trits(digits(160 + m, 16, 5)));
    }
    for j in 0..4 {
        out.push(scale_trits(digits(240 + j, 4, 4) * 3));
    }
    out.extend_from_slice(&d.to_le_bytes());
}
