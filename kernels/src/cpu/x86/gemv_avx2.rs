//! AVX2 GEMV (`n = 1`) for every format: one weight row per call, its sum in a
//! register, as the AVX-512 GEMV does — instead of a chunk dot per block written to
//! memory, reduced one by one and combined in a second pass. And the AVX2 GEMM
//! microkernels for the 2-bit formats ([`tq2_rows`], [`i2s_rows`]): one weight row
//! against up to four activation rows, each chunk decoded once for all of them.
//!
//! - TQ2_0 and TQ1_0 reduce four blocks at once ([`reduce4_256`]) and add
//!   `d_c · (dot_c as f32)` into a register in block order: the shared scalar
//!   combine's roundings, so the outputs equal the scalar path bit for bit.
//! - I2_S has one scale per tensor, so its 32-bit sums run over the whole row in one
//!   register and are reduced once.
//!
//! `maddubs` multiplies the unsigned codes (at most 3, trits at most 2) by the int8
//! activations in 16-bit pairs: a pair is at most `2 · 3 · 128 = 768`, so the at most
//! eight of them a chunk sums per 16-bit lane stay below 6 144, far from saturation,
//! before one `madd` widens them to 32 bits.

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::super::Prepared;
use super::tq1::{times3_256, times9_256, top_trit_256};
use super::{PREFETCH, add_scaled4, scaled1};
use crate::format::{tq1_0, tq2_0};
use crate::quant::CHUNK;

/// `[Σa, Σb, Σc, Σd]` of four int32 vectors in 9 shuffles and adds.
#[inline(always)]
unsafe fn reduce4_256(a: __m256i, b: __m256i, c: __m256i, d: __m256i) -> __m128i {
    let ab = _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
    let cd = _mm256_add_epi32(_mm256_unpacklo_epi32(c, d), _mm256_unpackhi_epi32(c, d));
    // Per 128-bit lane: [a, b, c, d] partial sums.
    let abcd = _mm256_add_epi32(_mm256_unpacklo_epi64(ab, cd), _mm256_unpackhi_epi64(ab, cd));
    _mm_add_epi32(
        _mm256_castsi256_si128(abcd),
        _mm256_extracti128_si256::<1>(abcd),
    )
}

/// Sum of the eight int32 lanes.
#[inline(always)]
pub(super) unsafe fn hsum(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01>(s));
    _mm_cvtsi128_si32(s)
}

/// The four code vectors (activation-group order) of one 32-byte half of a 2-bit
/// chunk: group `g` at shift `2g` (TQ2_0) or `6 − 2g` (I2_S, `reversed`).
#[inline(always)]
unsafe fn decode_half(p: *const u8, reversed: bool) -> [__m256i; 4] {
    let mask = _mm256_set1_epi8(3);
    let w = _mm256_loadu_si256(p as *const __m256i);
    let s = [
        _mm256_and_si256(w, mask),
        _mm256_and_si256(_mm256_srli_epi16::<2>(w), mask),
        _mm256_and_si256(_mm256_srli_epi16::<4>(w), mask),
        _mm256_and_si256(_mm256_srli_epi16::<6>(w), mask),
    ];
    if reversed {
        [s[3], s[2], s[1], s[0]]
    } else {
        s
    }
}

/// One 2-bit chunk's unsigned dot as eight 32-bit partial sums: 64 code bytes at `p`,
/// the chunk's prepared activations at `a`.
#[inline(always)]
unsafe fn two_bit_chunk(p: *const u8, a: *const i8, reversed: bool) -> __m256i {
    two_bit_dot(&two_bit_codes(p, reversed), a)
}

/// TQ2_0 row: `Σ_c d_c · (dot_c as f32)` in chunk order, before the activation scale.
///
/// # Safety
/// AVX2 and F16C; `row` holds `full` 66-byte blocks; `prep` is in the 2-bit layout
/// with one activation row.
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn tq2(row: &[u8], full: usize, prep: &Prepared) -> f32 {
    const STRIDE: usize = tq2_0::BLOCK_BYTES;
    let base = row.as_ptr();
    let a = prep.values.as_ptr();
    let mut acc = 0.0f32;
    let mut c = 0;
    while c + 4 <= full {
        let p = base.add(c * STRIDE);
        for line in (0..4 * STRIDE).step_by(64) {
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH + line) as *const i8);
        }
        let dot = |b: usize| two_bit_chunk(p.add(b * STRIDE), a.add((c + b) * CHUNK), false);
        let s = reduce4_256(dot(0), dot(1), dot(2), dot(3));
        acc = add_scaled4(acc, s, prep.sums.as_ptr().add(c), p, STRIDE, 64);
        c += 4;
    }
    while c < full {
        let p = base.add(c * STRIDE);
        let dot = hsum(two_bit_chunk(p, a.add(c * CHUNK), false)) - *prep.sums.get_unchecked(c);
        acc += scaled1(dot, p, 64);
        c += 1;
    }
    acc
}

/// I2_S row: `Σ c·a` over the row's `full` chunks with unsigned codes (the caller
/// subtracts the activation sums and adds the half-chunk tail).
///
/// # Safety
/// AVX2; `row` holds `full` 64-byte chunks; `prep` as for [`tq2`].
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn i2s(row: &[u8], full: usize, prep: &Prepared) -> i32 {
    let base = row.as_ptr();
    let a = prep.values.as_ptr();
    let mut acc = _mm256_setzero_si256();
    for c in 0..full {
        let p = base.add(c * 64);
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH) as *const i8);
        acc = _mm256_add_epi32(acc, two_bit_chunk(p, a.add(c * CHUNK), true));
    }
    hsum(acc)
}

/// One TQ1_0 block's 256 trits (0, 1 or 2 per byte) as eight vectors whose lanes line
/// up with the block's activations in their natural order (llama.cpp's AVX2
/// arrangement), vector `i` against activations `32i..32i + 32`:
/// - code bytes 0..32, trit `t` (vectors 0..5);
/// - code bytes 32..48, trits 0 and 1 side by side, then 2 and 3 (vectors 5 and 6);
/// - their trit 4 beside the four `qh` bytes' trits 0..3 (vector 7).
///
/// Nothing past the block's 52 code bytes is read as a code.
#[inline(always)]
pub(super) unsafe fn tq1_trits(p: *const u8) -> [__m256i; 8] {
    let q0 = _mm256_loadu_si256(p as *const __m256i);
    let q1 = times3_256(q0);
    let q2 = times9_256(q0);
    let q3 = times9_256(q1);
    let q4 = times9_256(q2);
    let x0 = _mm256_broadcastsi128_si256(_mm_loadu_si128(p.add(32) as *const __m128i));
    let x1 = times3_256(x0);
    let x2 = times9_256(x0);
    let x3 = times9_256(x1);
    let x4 = times9_256(x2);
    // The qh bytes times 1, 3, 9 and 27 (mod 256), four of each.
    let qh = p.add(48).cast::<i32>().read_unaligned();
    let h = _mm256_mullo_epi16(
        _mm256_cvtepu8_epi16(_mm_set1_epi32(qh)),
        _mm256_set_epi16(27, 27, 27, 27, 9, 9, 9, 9, 3, 3, 3, 3, 1, 1, 1, 1),
    );
    let h = _mm256_and_si256(h, _mm256_set1_epi16(0xFF));
    let qh_powers = _mm_packus_epi16(_mm256_castsi256_si128(h), _mm256_extracti128_si256::<1>(h));
    // (Not `.map`: a closure would not inherit this function's target features.)
    [
        top_trit_256(q0),
        top_trit_256(q1),
        top_trit_256(q2),
        top_trit_256(q3),
        top_trit_256(q4),
        top_trit_256(_mm256_blend_epi32::<0xF0>(x0, x1)),
        top_trit_256(_mm256_blend_epi32::<0xF0>(x2, x3)),
        top_trit_256(_mm256_inserti128_si256::<1>(x4, qh_powers)),
    ]
}

/// The unsigned dot of [`tq1_trits`] with 256 activations in natural order at `a`, as
/// eight 32-bit partial sums (three 16-bit sums, so consecutive `maddubs` results do
/// not wait on each other).
#[inline(always)]
pub(super) unsafe fn tq1_dot(trits: &[__m256i; 8], a: *const i8) -> __m256i {
    let mut acc = [_mm256_setzero_si256(); 3];
    for (i, t) in trits.iter().enumerate() {
        let x = _mm256_loadu_si256(a.add(32 * i) as *const __m256i);
        acc[i % 3] = _mm256_add_epi16(acc[i % 3], _mm256_maddubs_epi16(*t, x));
    }
    let sum = _mm256_add_epi16(acc[0], _mm256_add_epi16(acc[1], acc[2]));
    _mm256_madd_epi16(sum, _mm256_set1_epi16(1))
}

/// TQ1_0 row: `Σ_c d_c · (dot_c as f32)` in block order, before the activation scale.
///
/// # Safety
/// AVX2 and F16C; `row` holds `chunks` 54-byte blocks; `acts` is the activation row
/// (`chunks · 256` values, natural order) and `prep` holds its chunk sums.
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn tq1(row: &[u8], chunks: usize, acts: &[i8], prep: &Prepared) -> f32 {
    const STRIDE: usize = tq1_0::BLOCK_BYTES;
    let base = row.as_ptr();
    let a = acts.as_ptr();
    let mut acc = 0.0f32;
    let mut c = 0;
    while c + 4 <= chunks {
        let p = base.add(c * STRIDE);
        for line in (0..4 * STRIDE).step_by(64) {
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH + line) as *const i8);
        }
        let dot = |b: usize| tq1_dot(&tq1_trits(p.add(b * STRIDE)), a.add((c + b) * CHUNK));
        let s = reduce4_256(dot(0), dot(1), dot(2), dot(3));
        acc = add_scaled4(acc, s, prep.sums.as_ptr().add(c), p, STRIDE, 52);
        c += 4;
    }
    while c < chunks {
        let p = base.add(c * STRIDE);
        let dot = hsum(tq1_dot(&tq1_trits(p), a.add(c * CHUNK))) - *prep.sums.get_unchecked(c);
        acc += scaled1(dot, p, 52);
        c += 1;
    }
    acc
}

/// The eight code vectors of one 2-bit chunk (both 32-byte halves), in the order the
/// prepared activations use: vector `2g + h` against activations `64g + 32h`.
#[inline(always)]
unsafe fn two_bit_codes(p: *const u8, reversed: bool) -> [__m256i; 8] {
    let lo = decode_half(p, reversed);
    let hi = decode_half(p.add(32), reversed);
    [lo[0], hi[0], lo[1], hi[1], lo[2], hi[2], lo[3], hi[3]]
}

/// The unsigned dot of [`two_bit_codes`] with one activation row's prepared chunk at
/// `a`, as eight 32-bit partial sums.
#[inline(always)]
unsafe fn two_bit_dot(codes: &[__m256i; 8], a: *const i8) -> __m256i {
    let mut acc = [_mm256_setzero_si256(); 2];
    for (i, code) in codes.iter().enumerate() {
        let x = _mm256_loadu_si256(a.add(32 * i) as *const __m256i);
        acc[i % 2] = _mm256_add_epi16(acc[i % 2], _mm256_maddubs_epi16(*code, x));
    }
    _mm256_madd_epi16(_mm256_add_epi16(acc[0], acc[1]), _mm256_set1_epi16(1))
}

/// GEMM microkernel for TQ2_0: one weight row against `R` (1..=4) activation rows
/// `r0..r0 + R`, each chunk decoded once for all of them. Lane `r` of the result is
/// `Σ_c d_c · (dot_c as f32)` in chunk order for activation row `r0 + r` — the
/// shared scalar combine's roundings, four rows per vector add.
///
/// # Safety
/// AVX2 and F16C; `row` holds `full` 66-byte blocks; `prep` is in the 2-bit layout
/// with activation rows `r0..r0 + R`.
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn tq2_rows<const R: usize>(
    row: &[u8],
    full: usize,
    prep: &Prepared,
    r0: usize,
) -> [f32; 4] {
    const STRIDE: usize = tq2_0::BLOCK_BYTES;
    let mut acc = _mm_setzero_ps();
    for c in 0..full {
        let p = row.as_ptr().add(c * STRIDE);
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH) as *const i8);
        let codes = two_bit_codes(p, false);
        let mut dots = [_mm256_setzero_si256(); 4];
        for (r, dot) in dots.iter_mut().enumerate().take(R) {
            let a = prep.values.as_ptr().add((r0 + r) * prep.stride + c * CHUNK);
            *dot = two_bit_dot(&codes, a);
        }
        // Chunk-major sums: rows r0.. are contiguous (zero past the last row).
        let sums = _mm_loadu_si128(prep.sums_by_chunk.as_ptr().add(c * prep.n_pad + r0).cast());
        let s = _mm_sub_epi32(reduce4_256(dots[0], dots[1], dots[2], dots[3]), sums);
        let d = _mm_cvtph_ps(_mm_set1_epi16(p.add(64).cast::<i16>().read_unaligned()));
        acc = _mm_add_ps(acc, _mm_mul_ps(d, _mm_cvtepi32_ps(s)));
    }
    let mut out = [0.0f32; 4];
    _mm_storeu_ps(out.as_mut_ptr(), acc);
    out
}

/// GEMM microkernel for I2_S: lane `r` is `Σ c·a` over the row's `full` chunks with
/// unsigned codes for activation row `r0 + r` (the caller subtracts the activation
/// sums and adds the half-chunk tail).
///
/// # Safety
/// AVX2; `row` holds `full` 64-byte chunks; `prep` as for [`tq2_rows`].
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn i2s_rows<const R: usize>(
    row: &[u8],
    full: usize,
    prep: &Prepared,
    r0: usize,
) -> [i32; 4] {
    let mut acc = [_mm256_setzero_si256(); 4];
    for c in 0..full {
        let p = row.as_ptr().add(c * 64);
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH) as *const i8);
        let codes = two_bit_codes(p, true);
        for (r, acc) in acc.iter_mut().enumerate().take(R) {
            let a = prep.values.as_ptr().add((r0 + r) * prep.stride + c * CHUNK);
            *acc = _mm256_add_epi32(*acc, two_bit_dot(&codes, a));
        }
    }
    let mut out = [0i32; 4];
    _mm_storeu_si128(
        out.as_mut_ptr().cast(),
        reduce4_256(acc[0], acc[1], acc[2], acc[3]),
    );
    out
}
