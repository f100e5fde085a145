//! Decoding tensor data to `f32`, for `gauntlet inspect --values` and tests.
//!
//! F32, F16, BF16, Q8_0, ggml's legacy 4/5-bit formats, the k-quants (Q2_K … Q6_K)
//! and IQ4_NL, IQ4_XS and MXFP4 (in `quants`) decode here. The ternary formats
//! (TQ1_0, TQ2_0, I2_S) decode through `gauntlet_kernels`' scalar reference
//! decoders, so the kernels crate stays the single source of truth for their bit
//! layouts.

mod quants;

use gauntlet_kernels::{FormatError, TernaryFormat};

use super::types::GgmlType;

/// Why values could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// No decoder for this type yet.
    #[error("cannot decode type {0} yet")]
    Unsupported(GgmlType),
    /// The data is shorter than `count` values need.
    #[error("tensor data holds {have} bytes, {need} needed for the requested values")]
    Short {
        /// Bytes needed.
        need: u64,
        /// Bytes present.
        have: u64,
    },
    /// The ternary decoder rejected the tensor's bytes.
    #[error(transparent)]
    Ternary(#[from] FormatError),
}

/// The types [`decode_f32`] decodes, for error messages that say what would work.
pub const DECODABLE: &[GgmlType] = &[
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::IQ4_NL,
    GgmlType::IQ4_XS,
    GgmlType::MXFP4,
    GgmlType::TQ1_0,
    GgmlType::TQ2_0,
    GgmlType::I2_S,
];

/// Decodes the first `count` values of a tensor of type `ty` whose bytes are `data`.
pub fn decode_f32(ty: GgmlType, data: &[u8], count: usize) -> Result<Vec<f32>, DecodeError> {
    let short = |need: usize| DecodeError::Short {
        need: need as u64,
        have: data.len() as u64,
    };
    if let Some(decode) = quants::block_decoder(ty) {
        return blocks(ty, decode, data, count);
    }
    match ty {
        GgmlType::F32 => fixed(data, count, 4, |b| {
            f32::from_le_bytes([b[0], b[1], b[2], b[3]])
        })
        .ok_or_else(|| short(count.saturating_mul(4))),
        GgmlType::F16 => fixed(data, count, 2, |b| {
            half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32()
        })
        .ok_or_else(|| short(count.saturating_mul(2))),
        GgmlType::BF16 => fixed(data, count, 2, |b| {
            half::bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32()
        })
        .ok_or_else(|| short(count.saturating_mul(2))),
        GgmlType::TQ1_0 => ternary(TernaryFormat::Tq1_0, data, count),
        GgmlType::TQ2_0 => ternary(TernaryFormat::Tq2_0, data, count),
        GgmlType::I2_S => ternary(TernaryFormat::I2S, data, count),
        other => Err(DecodeError::Unsupported(other)),
    }
}

/// Ternary formats: `data` is the whole tensor, whose weight count follows from its
/// length (I2_S keeps its one scale in a trailer after the codes).
fn ternary(format: TernaryFormat, data: &[u8], count: usize) -> Result<Vec<f32>, DecodeError> {
    let n = match format {
        TernaryFormat::I2S => data
            .len()
            .saturating_sub(gauntlet_kernels::format::i2_s::TRAILER_BYTES)
            .saturating_mul(4),
        _ => data.len() / format.block_bytes() * format.block_weights(),
    };
    if count > n {
        return Err(DecodeError::Short {
            need: format.tensor_bytes(count).map_or(u64::MAX, |b| b as u64),
            have: data.len() as u64,
        });
    }
    Ok(format.dequantize_prefix(data, n, count)?)
}

/// Block formats: whole blocks of `ty`'s size from the type table, decoded one by one.
/// The output is sized only after the bytes it needs are known to exist.
fn blocks(
    ty: GgmlType,
    decode: quants::BlockDecoder,
    data: &[u8],
    count: usize,
) -> Result<Vec<f32>, DecodeError> {
    // Block sizes in the table are at most 256 weights and a few hundred bytes.
    let (weights, bytes) = (ty.block_size() as usize, ty.type_size() as usize);
    let need = count.div_ceil(weights).saturating_mul(bytes);
    let Some(have) = data.get(..need) else {
        return Err(DecodeError::Short {
            need: need as u64,
            have: data.len() as u64,
        });
    };
    let mut out = vec![0.0f32; need / bytes * weights];
    for (block, y) in have.chunks_exact(bytes).zip(out.chunks_exact_mut(weights)) {
        decode(block, y);
    }
    out.truncate(count);
    Ok(out)
}

fn fixed(data: &[u8], count: usize, size: usize, f: impl Fn(&[u8]) -> f32) -> Option<Vec<f32>> {
    let bytes = data.get(..count.checked_mul(size)?)?;
    Some(bytes.chunks_exact(size).map(f).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn decodable_lists_exactly_the_types_that_decode() {
        for &ty in GgmlType::ALL {
            // Zero values need no bytes, so only an unsupported type can fail here.
            let decodes = !matches!(decode_f32(ty, &[], 0), Err(DecodeError::Unsupported(_)));
            assert_eq!(DECODABLE.contains(&ty), decodes, "{ty}");
        }
    }

    #[rstest]
    #[case::f32(GgmlType::F32, 1.5f32.to_le_bytes().to_vec(), vec![1.5])]
    #[case::f16(GgmlType::F16, half::f16::from_f32(-2.0).to_le_bytes().to_vec(), vec![-2.0])]
    #[case::bf16(GgmlType::BF16, half::bf16::from_f32(0.25).to_le_bytes().to_vec(), vec![0.25])]
    fn scalar_types_decode(
        #[case] ty: GgmlType,
        #[case] data: Vec<u8>,
        #[case] expected: Vec<f32>,
    ) {
        assert_eq!(decode_f32(ty, &data, expected.len()), Ok(expected));
    }

    #[test]
    fn q8_0_multiplies_scale_by_quant() {
        let mut block = half::f16::from_f32(0.5).to_le_bytes().to_vec();
        block.extend((0..32).map(|i| (i as i8 - 16) as u8));
        let got = decode_f32(GgmlType::Q8_0, &block, 3).expect("one block is enough");
        assert_eq!(got, vec![-8.0, -7.5, -7.0]);
    }

    #[test]
    fn short_data_is_an_error_not_a_panic() {
        assert!(matches!(
            decode_f32(GgmlType::F32, &[0; 7], 2),
            Err(DecodeError::Short { need: 8, have: 7 })
        ));
    }

    #[test]
    fn a_block_short_by_one_byte_is_an_error_for_every_block_type() {
        for &ty in DECODABLE {
            let block = ty.block_size() as usize;
            if block == 1 {
                continue; // F32/F16/BF16: covered above.
            }
            // Two blocks' worth of weights (I2_S: with its scale trailer), then one
            // byte fewer.
            let n = 2 * block.max(128);
            let bytes = ty.byte_size(n as u64, n as u64).expect("size") as usize;
            let whole = vec![0u8; bytes];
            decode_f32(ty, &whole, n).unwrap_or_else(|e| panic!("{ty}: {e}"));
            let short = decode_f32(ty, &whole[..bytes - 1], n);
            assert!(
                matches!(short, Err(DecodeError::Short { .. })),
                "{ty}: {short:?}"
            );
        }
    }

    #[rstest]
    #[case::tq1_0(GgmlType::TQ1_0, TernaryFormat::Tq1_0)]
    #[case::tq2_0(GgmlType::TQ2_0, TernaryFormat::Tq2_0)]
    #[case::i2_s(GgmlType::I2_S, TernaryFormat::I2S)]
    fn ternary_types_decode_through_the_kernels_reference(
        #[case] ty: GgmlType,
        #[case] format: TernaryFormat,
    ) {
        let x: Vec<f32> = (0..512).map(|i| [-0.75f32, 0.0, 0.75][i * 7 % 3]).collect();
        let bytes = format.quantize(&x).expect("ternary input quantizes");
        let got = decode_f32(ty, &bytes, 300).expect("prefix decodes");
        assert_eq!(got, format.dequantize(&bytes, 512).expect("whole")[..300]);
        assert!(matches!(
            decode_f32(ty, &bytes, 513),
            Err(DecodeError::Short { .. })
        ));
    }

    #[test]
    fn types_without_a_decoder_say_not_yet() {
        assert_eq!(
            decode_f32(GgmlType::IQ2_XXS, &[0; 66], 1).map_err(|e| e.to_string()),
            Err("cannot decode type IQ2_XXS yet".to_string())
        );
    }
}
