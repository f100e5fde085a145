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
/// ~14 GB/s per core, near enough to stay within L1/L2. Measured on the 2-vCPU Zen 4
/// runner (cold 6912×2560, 2 threads): 1024 B → 212–229 µs, 2048 → 188–213, 4096 →
/// 197–201 and the best streaming read (the read baseline shares this constant).
const PREFETCH: usize = 4096;

/// Weight-byte stride between 256-weight chunks and the offset of the codes in a chunk.
#[derive(Clone, Copy)]
pub(crate) struct Layout {
    pub(crate) chunk_stride: usize,
    /// I2_S stores group g at shift 6 − 2g; TQ2_0 at shift 2g.
    pub(crate) reversed: bool,
}

/// Sums each of four int32 vectors: `[Σa, Σb, Σc, Σd]` in 13 shuffles and adds
/// instead of four separate 9-op reductions.
#[inline(always)]
unsafe fn reduce4(a: __m512i, b: __m512i, c: __m512i, d: __m512i) -> __m128i {
    let ab = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
    let cd = _mm512_add_epi32(_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
    // Per 128-bit lane: [a, b, c, d] partial sums.
    let abcd = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
    let half = _mm256_add_epi32(
        _mm512_castsi512_si256(abcd),
        _mm512_extracti64x4_epi64::<1>(abcd),
    );
    _mm_add_epi32(
        _mm256_castsi256_si128(half),
        _mm256_extracti128_si256::<1>(half),
    )
}

/// The four code vectors of one 256-weight chunk, in activation-group order.
#[inline(always)]
unsafe fn decode512(p: *const u8, reversed: bool) -> [__m512i; 4] {
    let mask = _mm512_set1_epi8(3);
    let w = _mm512_loadu_si512(p as *const __m512i);
    let s0 = _mm512_and_si512(w, mask);
    let s1 = _mm512_and_si512(_mm512_srli_epi16::<2>(w), mask);
    let s2 = _mm512_and_si512(_mm512_srli_epi16::<4>(w), mask);
    let s3 = _mm512_and_si512(_mm512_srli_epi16::<6>(w), mask);
    if reversed {
        [s3, s2, s1, s0]
    } else {
        [s0, s1, s2, s3]
    }
}

#[inline(always)]
unsafe fn dot512(codes: &[__m512i; 4], a: *const i8) -> __m512i {
    let mut acc = _mm512_dpbusd_epi32(
        _mm512_setzero_si512(),
        codes[0],
        _mm512_loadu_si512(a as *const __m512i),
    );
    acc = _mm512_dpbusd_epi32(
        acc,
        codes[1],
        _mm512_loadu_si512(a.add(64) as *const __m512i),
    );
    acc = _mm512_dpbusd_epi32(
        acc,
        codes[2],
        _mm512_loadu_si512(a.add(128) as *const __m512i),
    );
    _mm512_dpbusd_epi32(
        acc,
        codes[3],
        _mm512_loadu_si512(a.add(192) as *const __m512i),
    )
}

/// AVX-512 VNNI: `out[r * chunks + c]` for the row's `full` 256-weight chunks. With
/// `fused` (TQ2_0 rows without a tail) it also writes the f32 outputs, combining the
/// chunk dots with the block scales exactly as the shared scalar combine does, but
/// with F16C and vector multiplies: the scalar combine cost a third of the GEMV. Chunks
/// go four at a time: sixteen code registers are decoded once and reused for every
/// activation row (GEMM reads each weight once), and the four chunk sums of a row are
/// reduced together.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VNNI; `row` must hold `full` chunks at
/// `layout.chunk_stride` with 64 code bytes each.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,f16c")]
pub(crate) unsafe fn row_dots_avx512(
    row: &[u8],
    full: usize,
    layout: Layout,
    prep: &Prepared,
    chunks: usize,
    out: &mut [i32],
    fused: Option<&mut [f32]>,
) {
    let n = prep.n;
    let base = row.as_ptr();
    // Per activation row, Σ_c d_c · dot_c in chunk order (only for `fused`).
    let mut acc = [0.0f32; super::MAX_N];
    let mut c = 0;
    while c + 4 <= full {
        let p = base.add(c * layout.chunk_stride);
        for q in 0..4 {
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH + q * 64) as *const i8);
        }
        let codes = [
            decode512(p, layout.reversed),
            decode512(p.add(layout.chunk_stride), layout.reversed),
            decode512(p.add(2 * layout.chunk_stride), layout.reversed),
            decode512(p.add(3 * layout.chunk_stride), layout.reversed),
        ];
        for r in 0..n {
            let a = prep.values.as_ptr().add(r * prep.stride + c * CHUNK);
            let s = reduce4(
                dot512(&codes[0], a),
                dot512(&codes[1], a.add(CHUNK)),
                dot512(&codes[2], a.add(2 * CHUNK)),
                dot512(&codes[3], a.add(3 * CHUNK)),
            );
            let at = r * chunks + c;
            let sums = _mm_loadu_si128(prep.sums.as_ptr().add(at) as *const __m128i);
            let dots = _mm_sub_epi32(s, sums);
            _mm_storeu_si128(out.as_mut_ptr().add(at) as *mut __m128i, dots);
            if fused.is_some() {
                let stride = layout.chunk_stride;
                let d = _mm_cvtph_ps(_mm_set_epi16(
                    0,
                    0,
                    0,
                    0,
                    p.add(3 * stride + 64).cast::<i16>().read_unaligned(),
                    p.add(2 * stride + 64).cast::<i16>().read_unaligned(),
                    p.add(stride + 64).cast::<i16>().read_unaligned(),
                    p.add(64).cast::<i16>().read_unaligned(),
                ));
                // Same roundings as the scalar combine: (d · (dot as f32)), then a
                // left-to-right sum in chunk order.
                let mut prod = [0.0f32; 4];
                _mm_storeu_ps(prod.as_mut_ptr(), _mm_mul_ps(d, _mm_cvtepi32_ps(dots)));
                let a = acc.get_unchecked_mut(r);
                *a += prod[0];
                *a += prod[1];
                *a += prod[2];
                *a += prod[3];
            }
        }
        c += 4;
    }
    while c < full {
        let p = base.add(c * layout.chunk_stride);
        let codes = decode512(p, layout.reversed);
        for r in 0..n {
            let a = prep.values.as_ptr().add(r * prep.stride + c * CHUNK);
            let dot = _mm512_reduce_add_epi32(dot512(&codes, a))
                - *prep.sums.get_unchecked(r * chunks + c);
            *out.get_unchecked_mut(r * chunks + c) = dot;
            if fused.is_some() {
                let d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(
                    p.add(64).cast::<u16>().read_unaligned(),
                ))));
                *acc.get_unchecked_mut(r) += d * dot as f32;
            }
        }
        c += 1;
    }
    if let Some(y) = fused {
        for r in 0..n {
            y[r] = acc[r] * prep.inv_scales[r];
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
            let a = prep.values.as_ptr().add(r * prep.stride + c * CHUNK);
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

/// The trit held in the top of `q`: `(q · 3) >> 8`, i.e. `(q ≥ 86) + (q ≥ 171)` —
/// two byte compares instead of 16-bit multiplies.
#[inline(always)]
unsafe fn top_trit(q: __m512i) -> __m512i {
    let one = _mm512_set1_epi8(1);
    let ge86 = _mm512_cmpge_epu8_mask(q, _mm512_set1_epi8(86));
    let ge171 = _mm512_cmpge_epu8_mask(q, _mm512_set1_epi8(171u8 as i8));
    _mm512_add_epi8(
        _mm512_maskz_mov_epi8(ge86, one),
        _mm512_maskz_mov_epi8(ge171, one),
    )
}

/// The five trit vectors of one TQ1_0 block (52 code bytes, masked load: the scale and
/// the bytes after the block are never read as codes). Trit `t` of byte `b` is the top
/// trit of `b · 3ᵗ mod 256`, and byte-wise wrapping adds compute `· 3 mod 256` exactly.
#[inline(always)]
unsafe fn decode_tq1(p: *const u8) -> [__m512i; 5] {
    let q0 = _mm512_maskz_loadu_epi8((1u64 << 52) - 1, p as *const i8);
    let times3 = |q: __m512i| _mm512_add_epi8(_mm512_add_epi8(q, q), q);
    let q1 = times3(q0);
    let q2 = times3(q1);
    let q3 = times3(q2);
    let q4 = times3(q3);
    [
        top_trit(q0),
        top_trit(q1),
        top_trit(q2),
        top_trit(q3),
        top_trit(q4),
    ]
}

#[inline(always)]
unsafe fn dot_tq1(codes: &[__m512i; 5], a: *const i8) -> __m512i {
    let mut acc = _mm512_setzero_si512();
    for (t, code) in codes.iter().enumerate() {
        acc = _mm512_dpbusd_epi32(
            acc,
            *code,
            _mm512_loadu_si512(a.add(64 * t) as *const __m512i),
        );
    }
    acc
}

/// AVX-512 VNNI for TQ1_0: `out[r * chunks + c]` for every block of the row, and with
/// `fused` the f32 outputs in the shared combine's rounding order.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VNNI and F16C; `row` must hold `chunks` 54-byte
/// blocks and `prep` must be in the TQ1_0 layout.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,f16c")]
pub(crate) unsafe fn row_dots_tq1_avx512(
    row: &[u8],
    prep: &Prepared,
    chunks: usize,
    out: &mut [i32],
    fused: Option<&mut [f32]>,
) {
    const STRIDE: usize = crate::format::tq1_0::BLOCK_BYTES;
    let n = prep.n;
    let base = row.as_ptr();
    let mut acc = [0.0f32; super::MAX_N];
    let mut c = 0;
    while c + 4 <= chunks {
        let p = base.add(c * STRIDE);
        for q in 0..4 {
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH + q * 64) as *const i8);
        }
        let codes = [
            decode_tq1(p),
            decode_tq1(p.add(STRIDE)),
            decode_tq1(p.add(2 * STRIDE)),
            decode_tq1(p.add(3 * STRIDE)),
        ];
        let d = _mm_cvtph_ps(_mm_set_epi16(
            0,
            0,
            0,
            0,
            p.add(3 * STRIDE + 52).cast::<i16>().read_unaligned(),
            p.add(2 * STRIDE + 52).cast::<i16>().read_unaligned(),
            p.add(STRIDE + 52).cast::<i16>().read_unaligned(),
            p.add(52).cast::<i16>().read_unaligned(),
        ));
        for r in 0..n {
            let a = prep
                .values
                .as_ptr()
                .add(r * prep.stride + c * super::TQ1_PREPARED);
            let s = reduce4(
                dot_tq1(&codes[0], a),
                dot_tq1(&codes[1], a.add(super::TQ1_PREPARED)),
                dot_tq1(&codes[2], a.add(2 * super::TQ1_PREPARED)),
                dot_tq1(&codes[3], a.add(3 * super::TQ1_PREPARED)),
            );
            let at = r * chunks + c;
            let dots = _mm_sub_epi32(
                s,
                _mm_loadu_si128(prep.sums.as_ptr().add(at) as *const __m128i),
            );
            _mm_storeu_si128(out.as_mut_ptr().add(at) as *mut __m128i, dots);
            // Same roundings as the scalar combine, summed in block order.
            let mut prod = [0.0f32; 4];
            _mm_storeu_ps(prod.as_mut_ptr(), _mm_mul_ps(d, _mm_cvtepi32_ps(dots)));
            let a = acc.get_unchecked_mut(r);
            *a += prod[0];
            *a += prod[1];
            *a += prod[2];
            *a += prod[3];
        }
        c += 4;
    }
    while c < chunks {
        let p = base.add(c * STRIDE);
        let codes = decode_tq1(p);
        let d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(
            p.add(52).cast::<u16>().read_unaligned(),
        ))));
        for r in 0..n {
            let a = prep
                .values
                .as_ptr()
                .add(r * prep.stride + c * super::TQ1_PREPARED);
            let dot = _mm512_reduce_add_epi32(dot_tq1(&codes, a))
                - *prep.sums.get_unchecked(r * chunks + c);
            *out.get_unchecked_mut(r * chunks + c) = dot;
            *acc.get_unchecked_mut(r) += d * dot as f32;
        }
        c += 1;
    }
    if let Some(y) = fused {
        for r in 0..n {
            y[r] = acc[r] * prep.inv_scales[r];
        }
    }
}

/// Two weight rows at once for GEMM (`n ≥ 2`): two chunks of each row are decoded
/// (sixteen code registers) and every activation load feeds two `dpbusd`s, halving the
/// loads per multiply that bound the one-row kernel once `n` grows. Writes the same
/// int32 dots and, with `fused`, the same f32 outputs as [`row_dots_avx512`] per row.
///
/// # Safety
/// As [`row_dots_avx512`], for both rows.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,f16c")]
// Indices run over several parallel arrays (codes, accumulators, outputs) at once.
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
pub(crate) unsafe fn row_pair_dots_avx512(
    rows: [&[u8]; 2],
    full: usize,
    layout: Layout,
    prep: &Prepared,
    chunks: usize,
    out: [&mut [i32]; 2],
    fused: Option<[&mut [f32]; 2]>,
) {
    let n = prep.n;
    let stride = layout.chunk_stride;
    let [out_a, out_b] = out;
    let (pa, pb) = (rows[0].as_ptr(), rows[1].as_ptr());
    let mut acc = [[0.0f32; super::MAX_N]; 2];
    let fuse = fused.is_some();
    let mut c = 0;
    while c < full {
        let pair = c + 1 < full;
        let (a0, b0) = (pa.add(c * stride), pb.add(c * stride));
        // Two chunks of each row per step: up to 132 bytes, so two lines per row.
        for line in [0, 64, 128] {
            _mm_prefetch::<_MM_HINT_T0>(a0.wrapping_add(PREFETCH + line) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(b0.wrapping_add(PREFETCH + line) as *const i8);
        }
        if !pair {
            // Odd last chunk: one chunk of each row.
            let codes = [
                decode512(a0, layout.reversed),
                decode512(b0, layout.reversed),
            ];
            for r in 0..n {
                let a = prep.values.as_ptr().add(r * prep.stride + c * CHUNK);
                let sum = *prep.sums.get_unchecked(r * chunks + c);
                for (i, (code, p)) in codes.iter().zip([a0, b0]).enumerate() {
                    let dot = _mm512_reduce_add_epi32(dot512(code, a)) - sum;
                    let o = if i == 0 { &mut *out_a } else { &mut *out_b };
                    *o.get_unchecked_mut(r * chunks + c) = dot;
                    if fuse {
                        let d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(
                            p.add(64).cast::<u16>().read_unaligned(),
                        ))));
                        acc[i][r] += d * dot as f32;
                    }
                }
            }
            break;
        }
        let codes = [
            decode512(a0, layout.reversed),
            decode512(a0.add(stride), layout.reversed),
            decode512(b0, layout.reversed),
            decode512(b0.add(stride), layout.reversed),
        ];
        let d = if fuse {
            _mm_cvtph_ps(_mm_set_epi16(
                0,
                0,
                0,
                0,
                b0.add(stride + 64).cast::<i16>().read_unaligned(),
                b0.add(64).cast::<i16>().read_unaligned(),
                a0.add(stride + 64).cast::<i16>().read_unaligned(),
                a0.add(64).cast::<i16>().read_unaligned(),
            ))
        } else {
            _mm_setzero_ps()
        };
        for r in 0..n {
            let a = prep.values.as_ptr().add(r * prep.stride + c * CHUNK);
            let mut accs = [_mm512_setzero_si512(); 4];
            for g in 0..4 {
                let x0 = _mm512_loadu_si512(a.add(64 * g) as *const __m512i);
                let x1 = _mm512_loadu_si512(a.add(CHUNK + 64 * g) as *const __m512i);
                accs[0] = _mm512_dpbusd_epi32(accs[0], codes[0][g], x0);
                accs[1] = _mm512_dpbusd_epi32(accs[1], codes[1][g], x1);
                accs[2] = _mm512_dpbusd_epi32(accs[2], codes[2][g], x0);
                accs[3] = _mm512_dpbusd_epi32(accs[3], codes[3][g], x1);
            }
            // [a·c, a·c+1, b·c, b·c+1] minus the activation sums of chunks c, c+1.
            let s = reduce4(accs[0], accs[1], accs[2], accs[3]);
            let sums = _mm_loadl_epi64(prep.sums.as_ptr().add(r * chunks + c) as *const __m128i);
            let dots = _mm_sub_epi32(s, _mm_unpacklo_epi64(sums, sums));
            let mut lanes = [0i32; 4];
            _mm_storeu_si128(lanes.as_mut_ptr() as *mut __m128i, dots);
            let at = r * chunks + c;
            *out_a.get_unchecked_mut(at) = lanes[0];
            *out_a.get_unchecked_mut(at + 1) = lanes[1];
            *out_b.get_unchecked_mut(at) = lanes[2];
            *out_b.get_unchecked_mut(at + 1) = lanes[3];
            if fuse {
                let mut prod = [0.0f32; 4];
                _mm_storeu_ps(prod.as_mut_ptr(), _mm_mul_ps(d, _mm_cvtepi32_ps(dots)));
                acc[0][r] += prod[0];
                acc[0][r] += prod[1];
                acc[1][r] += prod[2];
                acc[1][r] += prod[3];
            }
        }
        c += 2;
    }
    if let Some(ys) = fused {
        for (i, y) in ys.into_iter().enumerate() {
            for r in 0..n {
                y[r] = acc[i][r] * prep.inv_scales[r];
            }
        }
    }
}
