//! TQ2_0 (GGUF type 35): 256 weights in 66 bytes — `qs[64]` of 2-bit codes `x + 1`,
//! then an f16 scale `d` (the block's absmax).
//!
//! Byte `m` of 32-byte half `h` holds weight `128·h + 32·l + m` in bits `2l..2l+2`,
//! exactly as llama.cpp's `quantize_row_tq2_0_ref` writes it.

use half::f16;

use super::TernaryFormat;
use crate::error::FormatError;

/// Weights per block.
pub const BLOCK_WEIGHTS: usize = 256;
/// Bytes per block: 64 code bytes and an f16 scale.
pub const BLOCK_BYTES: usize = 66;
const FORMAT: TernaryFormat = TernaryFormat::Tq2_0;

/// A zero-copy view of one TQ2_0 block inside borrowed (e.g. memory-mapped) bytes.
#[derive(Debug, Clone, Copy)]
pub struct Block<'a> {
    bytes: &'a [u8; BLOCK_BYTES],
}

impl<'a> Block<'a> {
    /// The 64 packed code bytes.
    pub fn qs(&self) -> &'a [u8; 64] {
        self.bytes
            .first_chunk::<64>()
            .expect("a 66-byte block holds 64 code bytes")
    }

    /// The block scale.
    pub fn d(&self) -> f16 {
        f16::from_le_bytes([self.bytes[64], self.bytes[65]])
    }

    /// The ternary code (−1, 0 or +1) of weight `j` (0..256). A stored code of 3 (which
    /// no writer produces) decodes as +2, as llama.cpp's dequantizer does.
    pub fn code(&self, j: usize) -> i8 {
        let byte = self.bytes[(j / 128) * 32 + j % 32];
        (((byte >> (2 * ((j % 128) / 32))) & 3) as i8) - 1
    }

    /// Decodes the block into `out` (256 values), as `dequantize_row_tq2_0` does.
    pub fn dequantize_into(&self, out: &mut [f32; BLOCK_WEIGHTS]) {
        let d = self.d().to_f32();
        for (j, o) in out.iter_mut().enumerate() {
            *o = f32::from(self.code(j)) * d;
        }
    }
}

/// Views `bytes` (a whole number of blocks) as TQ2_0 blocks without copying.
pub fn blocks(bytes: &[u8]) -> Result<impl ExactSizeIterator<Item = Block<'_>>, FormatError> {
    let (chunks, rest) = bytes.as_chunks::<BLOCK_BYTES>();
    if !rest.is_empty() {
        let weights = chunks.len() * BLOCK_WEIGHTS;
        return Err(FormatError::ByteLength {
            format: FORMAT,
            what: "block data (not a whole number of 66-byte blocks)",
            actual: bytes.len(),
            expected: chunks.len() * BLOCK_BYTES,
            weights,
        });
    }
    Ok(chunks.iter().map(|bytes| Block { bytes }))
}

/// Quantizes `x` (a multiple of 256 values) exactly as `quantize_row_tq2_0_ref`.
pub fn quantize(x: &[f32]) -> Result<Vec<u8>, FormatError> {
    super::quantize_tq(FORMAT, x, pack_block)
}

/// Decodes `n` weights from `bytes` (exactly `n / 256 · 66` bytes).
pub fn dequantize(bytes: &[u8], n: usize) -> Result<Vec<f32>, FormatError> {
    super::dequantize_tq(FORMAT, bytes, n, blocks, |b, out| b.dequantize_into(out))
}

/// Appends the blocks for `codes` (−1/0/+1, a multiple of 256) with every block's scale
/// set to `scale` (stored as f16), so that weight = code · f16(scale).
pub fn encode_codes(codes: &[i8], scale: f32, out: &mut Vec<u8>) -> Result<(), FormatError> {
    super::encode_codes_tq(FORMAT, codes, scale, out, pack_block)
}

fn pack_block(codes: &[u8; BLOCK_WEIGHTS], d: f16, out: &mut Vec<u8>) {
    for half in 0..2 {
        for m in 0..32 {
            let mut q = 0u8;
            for l in 0..4 {
                q |= (codes[half * 128 + l * 32 + m] & 3) << (2 * l);
            }
            out.push(q);
        }
    }
    out.extend_from_slice(&d.to_le_bytes());
}
