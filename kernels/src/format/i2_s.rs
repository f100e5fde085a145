//! I2_S (bitnet.cpp; GGUF type 36 in the BitNet fork): 2-bit codes −1→0, 0→1, +1→2 for the
//! whole tensor, then one f32 scale in a 32-byte trailer: `n / 4 + 32` bytes in all.
//!
//! x86 layout (what bitnet.cpp writes on x86 and what GGUF files carry): 128-weight blocks
//! of 32 bytes; weight `j` of a block sits in byte `j % 32` at shift `6 − 2·(j / 32)`.
//! The ARM build of bitnet.cpp writes 64-weight blocks of 16 bytes instead (weight `j` at
//! byte `j % 16`, shift `6 − 2·(j / 16)`); [`I2sLayout::Arm`] decodes that variant.

use super::{TernaryFormat, check_code, check_finite};
use crate::error::FormatError;

/// Weights per (x86) block.
pub const BLOCK_WEIGHTS: usize = 128;
/// Bytes per (x86) block.
pub const BLOCK_BYTES: usize = 32;
/// Bytes after the codes: the f32 scale, padded to 32 bytes for alignment.
pub const TRAILER_BYTES: usize = 32;
const FORMAT: TernaryFormat = TernaryFormat::I2S;

/// Which bitnet.cpp build wrote the codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum I2sLayout {
    /// 128-weight blocks of 32 bytes (x86 builds; the layout of distributed GGUF files).
    X86,
    /// 64-weight blocks of 16 bytes (ARM builds).
    Arm,
}

impl I2sLayout {
    /// Weights per block in this layout.
    pub const fn block_weights(self) -> usize {
        match self {
            I2sLayout::X86 => 128,
            I2sLayout::Arm => 64,
        }
    }

    /// (byte index within the block, bit shift) of weight `j` of a block.
    #[inline]
    pub const fn position(self, j: usize) -> (usize, u32) {
        let group = self.block_weights() / 4;
        (j % group, (6 - 2 * (j / group)) as u32)
    }
}

/// A zero-copy view of one x86 I2_S block (128 weights in 32 bytes). The scale lives in
/// the tensor trailer, so a block carries codes only.
#[derive(Debug, Clone, Copy)]
pub struct Block<'a> {
    bytes: &'a [u8; BLOCK_BYTES],
}

impl<'a> Block<'a> {
    /// The 32 packed code bytes.
    pub fn bytes(&self) -> &'a [u8; BLOCK_BYTES] {
        self.bytes
    }

    /// The ternary code (−1, 0 or +1) of weight `j` (0..128); a stored 3 decodes as +2.
    pub fn code(&self, j: usize) -> i8 {
        let (byte, shift) = I2sLayout::X86.position(j);
        (((self.bytes[byte] >> shift) & 3) as i8) - 1
    }
}

/// Views the code bytes (a whole number of 32-byte blocks, no trailer) without copying.
pub fn blocks(codes: &[u8]) -> Result<impl ExactSizeIterator<Item = Block<'_>>, FormatError> {
    let (chunks, rest) = codes.as_chunks::<BLOCK_BYTES>();
    if !rest.is_empty() {
        return Err(FormatError::ByteLength {
            format: FORMAT,
            what: "code bytes (not a whole number of 32-byte blocks)",
            actual: codes.len(),
            expected: chunks.len() * BLOCK_BYTES,
            weights: chunks.len() * BLOCK_WEIGHTS,
        });
    }
    Ok(chunks.iter().map(|bytes| Block { bytes }))
}

/// Reads the tensor scale from a whole tensor's bytes (`n / 4 + 32` long).
pub fn read_scale(tensor: &[u8], n: usize) -> Result<f32, FormatError> {
    let expected = FORMAT.tensor_bytes(n)?;
    FORMAT.check_len("tensor data", tensor, expected, n)?;
    let at = n / 4;
    let scale: [u8; 4] = tensor[at..at + 4].try_into().expect("length checked above");
    Ok(f32::from_le_bytes(scale))
}

/// The 32-byte trailer that ends an I2_S tensor: the f32 scale, then zero padding.
pub fn scale_trailer(scale: f32) -> [u8; TRAILER_BYTES] {
    let mut trailer = [0u8; TRAILER_BYTES];
    trailer[..4].copy_from_slice(&scale.to_le_bytes());
    trailer
}

/// Quantizes `x` (a multiple of 128 values) exactly as bitnet.cpp's `quantize_i2_s`:
/// the scale is the tensor's absmax, |x| < 1e-6 becomes 0 and any other value its sign.
/// It expects weights that are already ternary (±s, 0), as BitNet checkpoints are; for
/// arbitrary weights ternarize first with [`crate::quant::absmean_ternary`] and use
/// [`encode_codes`].
pub fn quantize(x: &[f32]) -> Result<Vec<u8>, FormatError> {
    FORMAT.check_multiple("input", x.len())?;
    check_finite(FORMAT, x)?;
    let max = x.iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
    let codes: Vec<i8> = x
        .iter()
        .map(|&v| {
            let v = f64::from(v);
            if v.abs() < 1e-6 {
                0
            } else if v * max > 0.0 {
                1
            } else {
                -1
            }
        })
        .collect();
    let mut out = Vec::with_capacity(x.len() / 4 + TRAILER_BYTES);
    encode_codes(&codes, &mut out)?;
    out.extend_from_slice(&scale_trailer(max as f32));
    Ok(out)
}

/// Decodes `n` weights from a whole x86-layout tensor (`n / 4 + 32` bytes).
pub fn dequantize(tensor: &[u8], n: usize) -> Result<Vec<f32>, FormatError> {
    dequantize_with_layout(tensor, n, I2sLayout::X86)
}

/// Decodes `n` weights from a whole tensor written in `layout`.
pub fn dequantize_with_layout(
    tensor: &[u8],
    n: usize,
    layout: I2sLayout,
) -> Result<Vec<f32>, FormatError> {
    let scale = read_scale(tensor, n)?;
    if !n.is_multiple_of(layout.block_weights()) {
        return Err(FormatError::NotBlockMultiple {
            format: FORMAT,
            what: "tensor",
            len: n,
            block: layout.block_weights(),
        });
    }
    Ok(dequantize_codes(&tensor[..n / 4], scale, layout))
}

/// Decodes code bytes (a whole number of blocks of `layout`) with `scale`.
pub(crate) fn dequantize_codes(codes: &[u8], scale: f32, layout: I2sLayout) -> Vec<f32> {
    let bw = layout.block_weights();
    let bb = bw / 4;
    let mut out = Vec::with_capacity(codes.len() * 4);
    for block in codes.chunks_exact(bb) {
        for j in 0..bw {
            let (byte, shift) = layout.position(j);
            let code = ((block[byte] >> shift) & 3) as i8 - 1;
            out.push(f32::from(code) * scale);
        }
    }
    out
}

/// Appends the x86-layout code bytes for `codes` (−1/0/+1, a multiple of 128). The scale
/// goes once at the end of the tensor: append [`scale_trailer`] after the last chunk.
pub fn encode_codes(codes: &[i8], out: &mut Vec<u8>) -> Result<(), FormatError> {
    encode_codes_with_layout(codes, I2sLayout::X86, out)
}

/// Appends the code bytes for `codes` in `layout` (a multiple of its block).
pub fn encode_codes_with_layout(
    codes: &[i8],
    layout: I2sLayout,
    out: &mut Vec<u8>,
) -> Result<(), FormatError> {
    let bw = layout.block_weights();
    if !codes.len().is_multiple_of(bw) {
        return Err(FormatError::NotBlockMultiple {
            format: FORMAT,
            what: "code chunk",
            len: codes.len(),
            block: bw,
        });
    }
    out.reserve(codes.len() / 4);
    for (b, block) in codes.chunks_exact(bw).enumerate() {
        let start = out.len();
        out.resize(start + bw / 4, 0);
        let dst = &mut out[start..];
        for (j, &c) in block.iter().enumerate() {
            let code = check_code(FORMAT, b * bw + j, c)?;
            let (byte, shift) = layout.position(j);
            dst[byte] |= code << shift;
        }
    }
    Ok(())
}
