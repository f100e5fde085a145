//! AVX2 and AVX-512 (BW + VNNI) row kernels for the 2-bit formats (TQ2_0, I2_S).
//!
//! Both formats put, in every 64 code bytes, weight `128·h + 32·g + m` at byte
//! `32·h + m` — TQ2_0 at shift `2g`, I2_S at shift `6 − 2g` — so one 64-byte load
//! yields 256 codes and one activation permutation (`Prepared`) serves both: per
//! 256-chunk, group `g` holds `a[128h + 32g + m]` at offset `64g + 32h + m`.
//! Codes stay unsigned (`w + 1`); the chunk's activation sum is subtracted at the end.

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::Prepared;
use crate::quant::CHUNK;

/// Bytes ahead of the current block to prefetch: far enough to cover DRAM latency at
/// ~14 GB/s per core, near enough to stay within the L1/L2 working set.
const PREFETCH: usize = 1024;

/// Weight-byte stride between 256-weight chunks and the offset of the codes in a chunk.
#[derive(Clone, Copy)]
pub(crate) struct Layout {
    pub(crate) chunk_stride: usize,
    /// I2_S stores group g at shift 6 − 2g; TQ2_0 at shift 2g.
    pub(crate) reversed: bool,
}

/// AVX-512 VNNI: `out[r * chunks + c]` for the row's `full` 256-weight chunks.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VNNI; `row` must hold `full` chunks at
/// `layout.chunk_stride` with 64 code bytes each.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2")]
pub(crate) unsafe fn row_dots_avx512(
    row: &[u8],
    full: usize,
    layout: Layout,
    prep: &Prepared,
    chunks: usize,
    out: &mut [i32],
) {
    let mask = _mm512_set1_epi8(3);
    let n = prep.n;
    for c in 0..full {
        let p = row.as_ptr().add(c * layout.chunk_stride);
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH) as *const i8);
        let w = _mm512_loadu_si512(p as *const __m512i);
        let s0 = _mm512_and_si512(w, mask);
        let s1 = _mm512_and_si512(_mm512_srli_epi16::<2>(w), mask);
        let s2 = _mm512_and_si512(_mm512_srli_epi16::<4>(w), mask);
        let s3 = _mm512_and_si512(_mm512_srli_epi16::<6>(w), mask);
        let (g0, g1, g2, g3) = if layout.reversed {
            (s3, s2, s1, s0)
        } else {
            (s0, s1, s2, s3)
        };
        for r in 0..n {
            let a = prep.values.as_ptr().add(r * prep.k + c * CHUNK);
            let mut acc = _mm512_dpbusd_epi32(
                _mm512_setzero_si512(),
                g0,
                _mm512_loadu_si512(a as *const __m512i),
            );
            acc = _mm512_dpbusd_epi32(acc, g1, _mm512_loadu_si512(a.add(64) as *const __m512i));
            acc = _mm512_dpbusd_epi32(acc, g2, _mm512_loadu_si512(a.add(128) as *const __m512i));
            acc = _mm512_dpbusd_epi32(acc, g3, _mm512_loadu_si512(a.add(192) as *const __m512i));
            *out.get_unchecked_mut(r * chunks + c) =
                _mm512_reduce_add_epi32(acc) - *prep.sums.get_unchecked(r * chunks + c);
        }
    }
}

#[inline(always)]
unsafe fn hsum_epi32_256(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01>(s));
    _mm_cvtsi128_si32(s)
}

/// AVX2: as [`row_dots_avx512`] with `maddubs` (codes ≤ 2, so the int16 pair sums of
/// eight products stay far below saturation).
///
/// # Safety
/// The CPU must support AVX2; `row` as for [`row_dots_avx512`].
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn row_dots_avx2(
    row: &[u8],
    full: usize,
    layout: Layout,
    prep: &Prepared,
    chunks: usize,
    out: &mut [i32],
) {
    let mask = _mm256_set1_epi8(3);
    let ones = _mm256_set1_epi16(1);
    let n = prep.n;
    for c in 0..full {
        let p = row.as_ptr().add(c * layout.chunk_stride);
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH) as *const i8);
        let mut codes = [[_mm256_setzero_si256(); 2]; 4];
        for (h, half) in [0usize, 32].into_iter().enumerate() {
            let w = _mm256_loadu_si256(p.add(half) as *const __m256i);
            let s = [
                _mm256_and_si256(w, mask),
                _mm256_and_si256(_mm256_srli_epi16::<2>(w), mask),
                _mm256_and_si256(_mm256_srli_epi16::<4>(w), mask),
                _mm256_and_si256(_mm256_srli_epi16::<6>(w), mask),
            ];
            for g in 0..4 {
                codes[g][h] = if layout.reversed { s[3 - g] } else { s[g] };
            }
        }
        for r in 0..n {
            let a = prep.values.as_ptr().add(r * prep.k + c * CHUNK);
            let mut acc = _mm256_setzero_si256();
            for (g, pair) in codes.iter().enumerate() {
                for (h, code) in pair.iter().enumerate() {
                    let x = _mm256_loadu_si256(a.add(64 * g + 32 * h) as *const __m256i);
                    acc = _mm256_add_epi16(acc, _mm256_maddubs_epi16(*code, x));
                }
            }
            let acc = _mm256_madd_epi16(acc, ones);
            *out.get_unchecked_mut(r * chunks + c) =
                hsum_epi32_256(acc) - *prep.sums.get_unchecked(r * chunks + c);
        }
    }
}

/// Streaming read with AVX-512: sums bytes with `vpsadbw`, one light op per 64 bytes,
/// so the loop measures the memory system rather than the ALUs.
///
/// # Safety
/// The CPU must support AVX-512 F/BW.
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) unsafe fn read_sum_avx512(bytes: &[u8]) -> u64 {
    let zero = _mm512_setzero_si512();
    let (mut a0, mut a1) = (_mm512_setzero_si512(), _mm512_setzero_si512());
    let chunks = bytes.len() / 128;
    let p = bytes.as_ptr();
    for i in 0..chunks {
        let q = p.add(i * 128);
        _mm_prefetch::<_MM_HINT_T0>(q.wrapping_add(PREFETCH) as *const i8);
        a0 = _mm512_add_epi64(
            a0,
            _mm512_sad_epu8(_mm512_loadu_si512(q as *const __m512i), zero),
        );
        a1 = _mm512_add_epi64(
            a1,
            _mm512_sad_epu8(_mm512_loadu_si512(q.add(64) as *const __m512i), zero),
        );
    }
    let tail: u64 = bytes[chunks * 128..].iter().map(|&b| u64::from(b)).sum();
    _mm512_reduce_add_epi64(_mm512_add_epi64(a0, a1)) as u64 + tail
}

/// Streaming read with AVX2 (`vpsadbw` on 32-byte loads).
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn read_sum_avx2(bytes: &[u8]) -> u64 {
    let zero = _mm256_setzero_si256();
    let (mut a0, mut a1) = (_mm256_setzero_si256(), _mm256_setzero_si256());
    let chunks = bytes.len() / 64;
    let p = bytes.as_ptr();
    for i in 0..chunks {
        let q = p.add(i * 64);
        _mm_prefetch::<_MM_HINT_T0>(q.wrapping_add(PREFETCH) as *const i8);
        a0 = _mm256_add_epi64(
            a0,
            _mm256_sad_epu8(_mm256_loadu_si256(q as *const __m256i), zero),
        );
        a1 = _mm256_add_epi64(
            a1,
            _mm256_sad_epu8(_mm256_loadu_si256(q.add(32) as *const __m256i), zero),
        );
    }
    let mut lanes = [0u64; 4];
    _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, _mm256_add_epi64(a0, a1));
    lanes.iter().sum::<u64>()
        + bytes[chunks * 64..]
            .iter()
            .map(|&b| u64::from(b))
            .sum::<u64>()
}
