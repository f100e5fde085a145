//! The scalar reference: the oracle every SIMD and GPU path must equal bit for bit.
//!
//! It reads weights through the format's own block views in natural order and forms
//! the signed dot `Σ (c − 1) · a` directly, so it shares neither the activation
//! permutation nor the `Σ c·a − Σ a` trick with the fast paths it checks.

use crate::format::{TernaryFormat, i2_s, tq1_0, tq2_0};
use crate::quant::{CHUNK, QuantizedActivations};

/// Writes the int32 dot of weight row `row` with every activation row, per 256-weight
/// chunk, into `out[r * chunks + c]`.
pub(crate) fn row_dots(
    format: TernaryFormat,
    row: &[u8],
    acts: &QuantizedActivations,
    out: &mut [i32],
) {
    let k = acts.k();
    let chunks = k.div_ceil(CHUNK);
    let mut codes = vec![0i8; k];
    match format {
        TernaryFormat::Tq1_0 => {
            for (b, block) in tq1_0::blocks(row).into_iter().flatten().enumerate() {
                for j in 0..tq1_0::BLOCK_WEIGHTS {
                    codes[b * tq1_0::BLOCK_WEIGHTS + j] = block.code(j);
                }
            }
        }
        TernaryFormat::Tq2_0 => {
            for (b, block) in tq2_0::blocks(row).into_iter().flatten().enumerate() {
                for j in 0..tq2_0::BLOCK_WEIGHTS {
                    codes[b * tq2_0::BLOCK_WEIGHTS + j] = block.code(j);
                }
            }
        }
        TernaryFormat::I2S => {
            for (b, block) in i2_s::blocks(row).into_iter().flatten().enumerate() {
                for j in 0..i2_s::BLOCK_WEIGHTS {
                    codes[b * i2_s::BLOCK_WEIGHTS + j] = block.code(j);
                }
            }
        }
    }
    for r in 0..acts.n() {
        let a = acts.row(r);
        for c in 0..chunks {
            let range = c * CHUNK..((c + 1) * CHUNK).min(k);
            out[r * chunks + c] = codes[range.clone()]
                .iter()
                .zip(&a[range])
                .map(|(&w, &x)| i32::from(w) * i32::from(x))
                .sum();
        }
    }
}
