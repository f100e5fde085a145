//! The ternary weight formats: one table of layout facts, and per format a quantizer,
//! a dequantizer, a zero-copy block view and a streaming encoder from ternary codes.
//!
//! TQ1_0 and TQ2_0 are byte-for-byte llama.cpp's layouts (`ggml-quants.c`,
//! gguf-py `quants.py`); I2_S is microsoft/BitNet's (x86 128-weight blocks, one f32
//! scale per tensor after the codes). The committed vectors under `tests/vectors/`
//! were written by the reference Python package and are matched byte for byte.

pub mod i2_s;
pub mod tq1_0;
pub mod tq2_0;

use std::fmt;

use crate::error::FormatError;

/// One of the ternary weight formats, with the facts every other module reads from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TernaryFormat {
    /// llama.cpp TQ1_0: base-3 packing, 256 weights in 54 bytes, f16 absmax scale per block.
    Tq1_0,
    /// llama.cpp TQ2_0: 2-bit codes `x + 1`, 256 weights in 66 bytes, f16 absmax scale per block.
    Tq2_0,
    /// bitnet.cpp I2_S: 2-bit codes, 128-weight blocks of 32 bytes, one f32 scale per tensor.
    I2S,
}

impl TernaryFormat {
    /// All formats, in type-id order.
    pub const ALL: [TernaryFormat; 3] = [
        TernaryFormat::Tq1_0,
        TernaryFormat::Tq2_0,
        TernaryFormat::I2S,
    ];

    /// The GGUF tensor type id (I2_S uses the BitNet fork's id, which mainline reuses).
    pub const fn ggml_type_id(self) -> u32 {
        match self {
            TernaryFormat::Tq1_0 => 34,
            TernaryFormat::Tq2_0 => 35,
            TernaryFormat::I2S => 36,
        }
    }

    /// The format for a GGUF tensor type id.
    pub fn from_ggml_type_id(id: u32) -> Result<Self, FormatError> {
        match id {
            34 => Ok(TernaryFormat::Tq1_0),
            35 => Ok(TernaryFormat::Tq2_0),
            36 => Ok(TernaryFormat::I2S),
            other => Err(FormatError::UnknownTypeId(other)),
        }
    }

    /// The name used by llama.cpp / bitnet.cpp.
    pub const fn name(self) -> &'static str {
        match self {
            TernaryFormat::Tq1_0 => "TQ1_0",
            TernaryFormat::Tq2_0 => "TQ2_0",
            TernaryFormat::I2S => "I2_S",
        }
    }

    /// Weights per block: every row length and every encoder chunk is a multiple of it.
    pub const fn block_weights(self) -> usize {
        match self {
            TernaryFormat::Tq1_0 => tq1_0::BLOCK_WEIGHTS,
            TernaryFormat::Tq2_0 => tq2_0::BLOCK_WEIGHTS,
            TernaryFormat::I2S => i2_s::BLOCK_WEIGHTS,
        }
    }

    /// Bytes per block (for I2_S the code bytes only; the tensor adds a 32-byte trailer).
    pub const fn block_bytes(self) -> usize {
        match self {
            TernaryFormat::Tq1_0 => tq1_0::BLOCK_BYTES,
            TernaryFormat::Tq2_0 => tq2_0::BLOCK_BYTES,
            TernaryFormat::I2S => i2_s::BLOCK_BYTES,
        }
    }

    /// Bytes of one row of `k` weights, excluding any per-tensor trailer.
    pub fn row_bytes(self, k: usize) -> Result<usize, FormatError> {
        self.check_multiple("row length K", k)?;
        Ok(k / self.block_weights() * self.block_bytes())
    }

    /// Bytes of a whole tensor of `n` weights as stored in a GGUF file
    /// (I2_S: `n / 4 + 32`, the scale trailer included).
    pub fn tensor_bytes(self, n: usize) -> Result<usize, FormatError> {
        self.check_multiple("tensor", n)?;
        let codes = n / self.block_weights() * self.block_bytes();
        Ok(match self {
            TernaryFormat::I2S => codes + i2_s::TRAILER_BYTES,
            _ => codes,
        })
    }

    /// Quantizes `x` with the format's reference quantizer (llama.cpp's for TQ1_0/TQ2_0,
    /// bitnet.cpp's `quantize_i2_s` for I2_S), returning the whole tensor's bytes.
    pub fn quantize(self, x: &[f32]) -> Result<Vec<u8>, FormatError> {
        match self {
            TernaryFormat::Tq1_0 => tq1_0::quantize(x),
            TernaryFormat::Tq2_0 => tq2_0::quantize(x),
            TernaryFormat::I2S => i2_s::quantize(x),
        }
    }

    /// Decodes `n` weights from a whole tensor's bytes (exactly `tensor_bytes(n)` long).
    pub fn dequantize(self, bytes: &[u8], n: usize) -> Result<Vec<f32>, FormatError> {
        match self {
            TernaryFormat::Tq1_0 => tq1_0::dequantize(bytes, n),
            TernaryFormat::Tq2_0 => tq2_0::dequantize(bytes, n),
            TernaryFormat::I2S => i2_s::dequantize(bytes, n),
        }
    }

    /// Decodes the first `count` weights of a tensor without decoding the rest
    /// (what `inspect --values N` needs on a multi-GiB tensor). `n` is the tensor's
    /// total weight count, used to find I2_S's trailing scale.
    pub fn dequantize_prefix(
        self,
        bytes: &[u8],
        n: usize,
        count: usize,
    ) -> Result<Vec<f32>, FormatError> {
        let expected = self.tensor_bytes(n)?;
        if bytes.len() != expected {
            return Err(FormatError::ByteLength {
                format: self,
                what: "tensor data",
                actual: bytes.len(),
                expected,
                weights: n,
            });
        }
        let count = count.min(n);
        let bw = self.block_weights();
        let blocks = count.div_ceil(bw);
        let mut out = match self {
            TernaryFormat::Tq1_0 => {
                tq1_0::dequantize(&bytes[..blocks * tq1_0::BLOCK_BYTES], blocks * bw)?
            }
            TernaryFormat::Tq2_0 => {
                tq2_0::dequantize(&bytes[..blocks * tq2_0::BLOCK_BYTES], blocks * bw)?
            }
            TernaryFormat::I2S => {
                let scale = i2_s::read_scale(bytes, n)?;
                i2_s::dequantize_codes(
                    &bytes[..blocks * i2_s::BLOCK_BYTES],
                    scale,
                    i2_s::I2sLayout::X86,
                )
            }
        };
        out.truncate(count);
        Ok(out)
    }

    /// Appends the encoding of `codes` (each −1, 0 or +1, a whole number of blocks) with
    /// `scale` as every block's scale. For I2_S this writes code bytes only; finish the
    /// tensor with [`i2_s::scale_trailer`]. Lets a writer stream a >1 GiB tensor row-chunk
    /// by row-chunk without holding it.
    pub fn encode_codes(
        self,
        codes: &[i8],
        scale: f32,
        out: &mut Vec<u8>,
    ) -> Result<(), FormatError> {
        match self {
            TernaryFormat::Tq1_0 => tq1_0::encode_codes(codes, scale, out),
            TernaryFormat::Tq2_0 => tq2_0::encode_codes(codes, scale, out),
            TernaryFormat::I2S => i2_s::encode_codes(codes, out),
        }
    }

    pub(crate) fn check_multiple(self, what: &'static str, len: usize) -> Result<(), FormatError> {
        let block = self.block_weights();
        if !len.is_multiple_of(block) {
            return Err(FormatError::NotBlockMultiple {
                format: self,
                what,
                len,
                block,
            });
        }
        Ok(())
    }

    pub(crate) fn check_len(
        self,
        what: &'static str,
        bytes: &[u8],
        expected: usize,
        weights: usize,
    ) -> Result<(), FormatError> {
        if bytes.len() != expected {
            return Err(FormatError::ByteLength {
                format: self,
                what,
                actual: bytes.len(),
                expected,
                weights,
            });
        }
        Ok(())
    }
}

impl fmt::Display for TernaryFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Checks that all of `codes` are ternary and returns them as unsigned 2-bit codes (x + 1).
pub(crate) fn check_code(format: TernaryFormat, index: usize, code: i8) -> Result<u8, FormatError> {
    match code {
        -1..=1 => Ok((code + 1) as u8),
        _ => Err(FormatError::BadCode {
            format,
            index,
            code,
        }),
    }
}

/// Rejects NaN and infinities before any reference quantizer sees them (the C code's
/// behaviour on them is undefined).
pub(crate) fn check_finite(format: TernaryFormat, x: &[f32]) -> Result<(), FormatError> {
    match x.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(FormatError::NonFinite {
            format,
            index,
            value: x[index],
        }),
        None => Ok(()),
    }
}

/// A TQ format's block packer: 256 unsigned codes (0, 1, 2 for −1, 0, +1) and the
/// block's f16 scale, appended to `out` as one block.
pub(crate) type PackBlock = fn(&[u8; 256], half::f16, &mut Vec<u8>);

/// TQ1_0's and TQ2_0's quantizer (`quantize_row_tq{1,2}_0_ref`): per 256-weight block
/// the absmax as its scale and `round(x / amax) + 1` as its codes, packed by `pack`.
pub(crate) fn quantize_tq(
    format: TernaryFormat,
    x: &[f32],
    pack: PackBlock,
) -> Result<Vec<u8>, FormatError> {
    format.check_multiple("input", x.len())?;
    check_finite(format, x)?;
    let mut out = Vec::with_capacity(x.len() / 256 * format.block_bytes());
    let mut codes = [0u8; 256];
    for block in x.chunks_exact(256) {
        let amax = absmax_codes(block, &mut codes);
        pack(&codes, half::f16::from_f32(amax), &mut out);
    }
    Ok(out)
}

/// TQ1_0's and TQ2_0's dequantizer: `n` weights from exactly `n / 256` blocks, viewed
/// by `blocks` and decoded one by one by `decode`.
pub(crate) fn dequantize_tq<'a, I: Iterator>(
    format: TernaryFormat,
    bytes: &'a [u8],
    n: usize,
    blocks: impl FnOnce(&'a [u8]) -> Result<I, FormatError>,
    decode: impl Fn(I::Item, &mut [f32; 256]),
) -> Result<Vec<f32>, FormatError> {
    format.check_multiple("tensor", n)?;
    format.check_len("tensor data", bytes, n / 256 * format.block_bytes(), n)?;
    let mut out = vec![0.0f32; n];
    for (block, dst) in blocks(bytes)?.zip(out.as_chunks_mut::<256>().0) {
        decode(block, dst);
    }
    Ok(out)
}

/// TQ1_0's and TQ2_0's encoder from ternary codes (a multiple of 256): every block's
/// scale is `scale` (stored as f16), so that weight = code · f16(scale).
pub(crate) fn encode_codes_tq(
    format: TernaryFormat,
    codes: &[i8],
    scale: f32,
    out: &mut Vec<u8>,
    pack: PackBlock,
) -> Result<(), FormatError> {
    format.check_multiple("code chunk", codes.len())?;
    let d = half::f16::from_f32(scale);
    out.reserve(codes.len() / 256 * format.block_bytes());
    let mut unsigned = [0u8; 256];
    for (b, block) in codes.chunks_exact(256).enumerate() {
        for (j, (u, &c)) in unsigned.iter_mut().zip(block).enumerate() {
            *u = check_code(format, b * 256 + j, c)?;
        }
        pack(&unsigned, d, out);
    }
    Ok(())
}

/// llama.cpp's per-block absmax and its `lroundf(x * (1/amax)) + 1` code, clamped to 0..=2.
pub(crate) fn absmax_codes(block: &[f32], codes: &mut [u8]) -> f32 {
    let amax = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let id = if amax != 0.0 { 1.0 / amax } else { 0.0 };
    for (c, &v) in codes.iter_mut().zip(block) {
        // f32::round is lroundf's half-away-from-zero rounding.
        *c = ((v * id).round() as i32 + 1).clamp(0, 2) as u8;
    }
    amax
}
