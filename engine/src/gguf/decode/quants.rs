//! ggml's legacy formats (32-weight blocks: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1), k-quants
//! (256-weight super-blocks: Q2_K … Q6_K) and the table formats IQ4_NL, IQ4_XS and
//! MXFP4, decoded as ggml's `dequantize_row_*` and
//! PyPI `gguf.quants` do: the same f32 operations in the same order (`d · q`, then
//! `+ m` or `− m` as a second rounding), so values match the reference bit for bit.
//! `.ci/run` and `suites/tests/conformance.rs` check that against `gguf.quants` on
//! random blocks of every type here (`block_formats.gguf`; Q8_0 in `all_types.gguf`).

use half::f16;

use super::GgmlType;

/// Decodes one block of `ty` (its sizes from the type table) into `y`.
pub(super) type BlockDecoder = fn(&[u8], &mut [f32]);

/// The block decoder for `ty`, when it is one of the formats here.
pub(super) fn block_decoder(ty: GgmlType) -> Option<BlockDecoder> {
    Some(match ty {
        GgmlType::Q8_0 => q8_0,
        GgmlType::Q4_0 => q4_0,
        GgmlType::Q4_1 => q4_1,
        GgmlType::Q5_0 => q5_0,
        GgmlType::Q5_1 => q5_1,
        GgmlType::Q2_K => q2_k,
        GgmlType::Q3_K => q3_k,
        GgmlType::Q4_K => q4_k,
        GgmlType::Q5_K => q5_k,
        GgmlType::Q6_K => q6_k,
        GgmlType::IQ4_NL => iq4_nl,
        GgmlType::IQ4_XS => iq4_xs,
        GgmlType::MXFP4 => mxfp4,
        _ => return None,
    })
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Q8_0: `d`, then 32 int8 quants; value `d · q`.
fn q8_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    for (v, &q) in y.iter_mut().zip(&b[2..34]) {
        *v = d * f32::from(q as i8);
    }
}

/// Q4_0: `d`, then 16 bytes whose low nibbles are weights 0..16 and high nibbles
/// 16..32; value `d · (q − 8)`.
fn q4_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    for (j, &q) in b[2..18].iter().enumerate() {
        y[j] = d * (i32::from(q & 0xF) - 8) as f32;
        y[j + 16] = d * (i32::from(q >> 4) - 8) as f32;
    }
}

/// Q4_1: `d`, `m`, then nibbles as Q4_0; value `d · q + m`.
fn q4_1(b: &[u8], y: &mut [f32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    for (j, &q) in b[4..20].iter().enumerate() {
        y[j] = d * f32::from(q & 0xF) + m;
        y[j + 16] = d * f32::from(q >> 4) + m;
    }
}

/// The 5-bit quants of Q5_0/Q5_1: nibbles as Q4_0, bit `j` of `qh` on top of weight `j`.
fn five_bit(qh: u32, qs: &[u8], mut f: impl FnMut(usize, u8)) {
    for (j, &q) in qs.iter().enumerate() {
        let high = |bit: usize| (((qh >> bit) & 1) as u8) << 4;
        f(j, (q & 0xF) | high(j));
        f(j + 16, (q >> 4) | high(j + 16));
    }
}

/// Q5_0: `d`, 32 high bits, nibbles; value `d · (q − 16)`.
fn q5_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    five_bit(u32_at(b, 2), &b[6..22], |j, q| {
        y[j] = d * (i32::from(q) - 16) as f32;
    });
}

/// Q5_1: `d`, `m`, 32 high bits, nibbles; value `d · q + m`.
fn q5_1(b: &[u8], y: &mut [f32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    five_bit(u32_at(b, 4), &b[8..24], |j, q| {
        y[j] = d * f32::from(q) + m;
    });
}

/// Weight `i` of a super-block whose 2-bit fields sit 32 bytes per 128 weights:
/// byte `32·(i / 128) + i % 32`, shift `2·((i % 128) / 32)`.
fn two_bits(qs: &[u8], i: usize) -> u8 {
    (qs[32 * (i / 128) + i % 32] >> (2 * ((i % 128) / 32))) & 3
}

/// Q2_K: 16 scale bytes (low nibble scale, high nibble min, per 16 weights), 2-bit
/// quants, `d`, `dmin`; value `(d · sc) · q − dmin · mn`.
fn q2_k(b: &[u8], y: &mut [f32]) {
    let (scales, qs) = (&b[0..16], &b[16..80]);
    let (d, dmin) = (f16_at(b, 80), f16_at(b, 82));
    for (i, v) in y.iter_mut().enumerate() {
        let s = scales[i / 16];
        let dl = d * f32::from(s & 0xF);
        let ml = dmin * f32::from(s >> 4);
        *v = dl * f32::from(two_bits(qs, i)) - ml;
    }
}

/// Q3_K: a high-bit mask, 2-bit quants, sixteen 6-bit signed scales packed in 12
/// bytes, `d`; value `(d · sc) · q` with `q = low − 4` where the mask bit is clear.
fn q3_k(b: &[u8], y: &mut [f32]) {
    let (hmask, qs, scales) = (&b[0..32], &b[32..96], &b[96..108]);
    let d = f16_at(b, 108);
    let scale = |s: usize| {
        let low = if s < 8 {
            scales[s] & 0xF
        } else {
            scales[s - 8] >> 4
        };
        let high = (scales[8 + s % 4] >> (2 * (s / 4))) & 3;
        f32::from(((low | (high << 4)) as i8) - 32)
    };
    for (i, v) in y.iter_mut().enumerate() {
        let dl = d * scale(i / 16);
        let bit = (hmask[i % 32] >> (i / 32)) & 1;
        let q = i32::from(two_bits(qs, i)) - if bit == 0 { 4 } else { 0 };
        *v = dl * q as f32;
    }
}

/// The 6-bit scale and min of sub-block `s` (of 32 weights) in Q4_K/Q5_K's 12 bytes.
fn scale_min_k4(scales: &[u8], s: usize) -> (u8, u8) {
    if s < 4 {
        (scales[s] & 63, scales[s + 4] & 63)
    } else {
        (
            (scales[s + 4] & 0xF) | ((scales[s - 4] >> 6) << 4),
            (scales[s + 4] >> 4) | ((scales[s] >> 6) << 4),
        )
    }
}

/// Weight `i`'s nibble where 32 bytes hold 64 weights (low nibbles first).
fn nibble(qs: &[u8], i: usize) -> u8 {
    (qs[32 * (i / 64) + i % 32] >> (4 * ((i % 64) / 32))) & 0xF
}

/// Q4_K: `d`, `dmin`, 6-bit scales and mins per 32 weights, nibbles; value
/// `(d · sc) · q − dmin · mn`.
fn q4_k(b: &[u8], y: &mut [f32]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let (scales, qs) = (&b[4..16], &b[16..144]);
    for (i, v) in y.iter_mut().enumerate() {
        let (sc, mn) = scale_min_k4(scales, i / 32);
        *v = (d * f32::from(sc)) * f32::from(nibble(qs, i)) - dmin * f32::from(mn);
    }
}

/// Q5_K: as Q4_K with a fifth bit per weight from `qh` (bit `i / 32` of byte `i % 32`).
fn q5_k(b: &[u8], y: &mut [f32]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let (scales, qh, qs) = (&b[4..16], &b[16..48], &b[48..176]);
    for (i, v) in y.iter_mut().enumerate() {
        let (sc, mn) = scale_min_k4(scales, i / 32);
        let q = nibble(qs, i) | (((qh[i % 32] >> (i / 32)) & 1) << 4);
        *v = (d * f32::from(sc)) * f32::from(q) - dmin * f32::from(mn);
    }
}

/// Q6_K: low nibbles (64 bytes per 128 weights), 2-bit high parts, sixteen int8
/// scales, `d`; value `(d · sc) · (q − 32)`.
fn q6_k(b: &[u8], y: &mut [f32]) {
    let (ql, qh, scales) = (&b[0..128], &b[128..192], &b[192..208]);
    let d = f16_at(b, 208);
    for (i, v) in y.iter_mut().enumerate() {
        let low = (ql[64 * (i / 128) + i % 64] >> (4 * ((i % 128) / 64))) & 0xF;
        let q = i32::from(low | (two_bits(qh, i) << 4)) - 32;
        *v = (d * f32::from(scales[i / 16] as i8)) * q as f32;
    }
}

/// IQ4_NL's and IQ4_XS's sixteen non-linear levels.
const IQ4_LEVELS: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// IQ4_NL: `d`, then nibbles as Q4_0 indexing [`IQ4_LEVELS`]; value `d · level`.
fn iq4_nl(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    for (j, &q) in b[2..18].iter().enumerate() {
        y[j] = d * f32::from(IQ4_LEVELS[usize::from(q & 0xF)]);
        y[j + 16] = d * f32::from(IQ4_LEVELS[usize::from(q >> 4)]);
    }
}

/// IQ4_XS: `d`, the high 2 bits of eight 6-bit scales (a u16), their low nibbles,
/// then per 32 weights 16 bytes of nibbles (low nibbles first); value
/// `(d · (sc − 32)) · level`.
fn iq4_xs(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let high = u16::from_le_bytes([b[2], b[3]]);
    let (low, qs) = (&b[4..8], &b[8..136]);
    for (s, sub) in y.chunks_exact_mut(32).enumerate() {
        let l = (low[s / 2] >> (4 * (s % 2))) & 0xF;
        let h = ((high >> (2 * s)) & 3) as u8;
        let dl = d * f32::from(((l | (h << 4)) as i8) - 32);
        for (x, &q) in qs[16 * s..16 * s + 16].iter().enumerate() {
            sub[x] = dl * f32::from(IQ4_LEVELS[usize::from(q & 0xF)]);
            sub[x + 16] = dl * f32::from(IQ4_LEVELS[usize::from(q >> 4)]);
        }
    }
}

/// MXFP4's E2M1 values, doubled (so the shared scale is halved, as ggml stores it).
const E2M1_DOUBLED: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// MXFP4: an E8M0 exponent `e` (the scale is `2^(e − 128)`, ggml's
/// `e8m0_to_fp32_half`), then nibbles as Q4_0 indexing [`E2M1_DOUBLED`].
fn mxfp4(b: &[u8], y: &mut [f32]) {
    let e = u32::from(b[0]);
    let d = f32::from_bits(if e < 2 {
        0x0020_0000 << e
    } else {
        (e - 1) << 23
    });
    for (j, &q) in b[1..17].iter().enumerate() {
        y[j] = d * f32::from(E2M1_DOUBLED[usize::from(q & 0xF)]);
        y[j + 16] = d * f32::from(E2M1_DOUBLED[usize::from(q >> 4)]);
    }
}
