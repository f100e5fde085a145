//! x86 kernels: AVX2 and AVX-512 (BW + VL + VNNI).
//!
//! - [`two_bit`]: one weight row at a time for TQ2_0 and I2_S as int32 chunk dots
//!   (AVX2 GEMM; on both paths the dots the bit-exactness tests compare).
//! - [`gemv`]: AVX-512 GEMV for the 2-bit formats in registers, four rows per call (and
//!   one per call for a piece's last rows).
//! - [`gemv_avx2`]: AVX2 GEMV for every format, one row per call in registers.
//! - [`gemm`]: the AVX-512 register-blocked GEMM microkernel for every format (two
//!   weight rows × up to eight activation rows per call).
//! - [`tq1`]: TQ1_0 (base-3 packing): AVX-512 GEMV and chunk dots, AVX2 chunk dots
//!   (the AVX2 GEMM's) and trits.
//! - the streaming-read baseline ([`read_sum_avx512`], [`read_sum_avx2`]).
//!
//! Both 2-bit formats put, in every 64 code bytes, weight `128·h + 32·g + m` at byte
//! `32·h + m` — TQ2_0 at shift `2g`, I2_S at shift `6 − 2g` — so one 64-byte load
//! yields 256 codes and one activation permutation (`Prepared`) serves both: per
//! 256-chunk, group `g` holds `a[128h + 32g + m]` at offset `64g + 32h + m`.
//! Codes stay unsigned (`w + 1`); the chunk's activation sum is subtracted at the end.

#![allow(unsafe_op_in_unsafe_fn)]

pub(crate) mod gemm;
pub(crate) mod gemv;
pub(crate) mod gemv_avx2;
pub(crate) mod tq1;
pub(crate) mod two_bit;

use std::arch::x86_64::*;

/// Bytes ahead of the current block to prefetch: far enough to cover DRAM latency at
/// ~14 GB/s per core, near enough to stay within L1/L2. Measured on the 2-vCPU Zen 4
/// runner (cold 6912×2560, 2 threads): 1024 B → 212–229 µs, 2048 → 188–213, 4096 →
/// 197–201 and the best streaming read (the read baseline shares this constant).
pub(super) const PREFETCH: usize = 4096;

/// Prefetches the lines of `bytes` bytes starting `NEAR` bytes ahead of `p` into L1
/// and, when `FAR` is not zero, those `FAR` bytes ahead into L2 (the last byte's line
/// included, which a 64-byte step alone can miss on unaligned rows).
#[inline(always)]
pub(super) unsafe fn prefetch_span<const NEAR: usize, const FAR: usize>(
    p: *const u8,
    bytes: usize,
) {
    let mut q = 0;
    while q < bytes {
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(NEAR + q) as *const i8);
        if FAR > 0 {
            _mm_prefetch::<_MM_HINT_T1>(p.wrapping_add(FAR + q) as *const i8);
        }
        q += 64;
    }
    _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(NEAR + bytes - 1) as *const i8);
    if FAR > 0 {
        _mm_prefetch::<_MM_HINT_T1>(p.wrapping_add(FAR + bytes - 1) as *const i8);
    }
}

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
pub(super) unsafe fn reduce4(a: __m512i, b: __m512i, c: __m512i, d: __m512i) -> __m128i {
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

/// `acc + Σ_c d_c · ((s_c − sums_c) as f32)` over four consecutive chunks, added left
/// to right in chunk order: the scalar combine's roundings. Chunk `c` starts at
/// `p + c · stride` and holds its f16 scale at byte `scale_at`.
#[inline(always)]
pub(super) unsafe fn add_scaled4(
    mut acc: f32,
    s: __m128i,
    sums: *const i32,
    p: *const u8,
    stride: usize,
    scale_at: usize,
) -> f32 {
    let dots = _mm_cvtepi32_ps(_mm_sub_epi32(s, _mm_loadu_si128(sums as *const __m128i)));
    let scale = |c: usize| p.add(c * stride + scale_at).cast::<i16>().read_unaligned();
    let d = _mm_cvtph_ps(_mm_set_epi16(
        0,
        0,
        0,
        0,
        scale(3),
        scale(2),
        scale(1),
        scale(0),
    ));
    let prod = _mm_mul_ps(d, dots);
    acc += _mm_cvtss_f32(prod);
    acc += _mm_cvtss_f32(_mm_shuffle_ps::<1>(prod, prod));
    acc += _mm_cvtss_f32(_mm_shuffle_ps::<2>(prod, prod));
    acc += _mm_cvtss_f32(_mm_shuffle_ps::<3>(prod, prod));
    acc
}

/// `d · (dot as f32)` for one chunk whose f16 scale is at `p + scale_at`.
#[inline(always)]
pub(super) unsafe fn scaled1(dot: i32, p: *const u8, scale_at: usize) -> f32 {
    let d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(
        p.add(scale_at).cast::<u16>().read_unaligned(),
    ))));
    d * dot as f32
}

/// The four code vectors of one 256-weight chunk, in activation-group order.
#[inline(always)]
pub(super) unsafe fn decode512(p: *const u8, reversed: bool) -> [__m512i; 4] {
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
pub(super) unsafe fn dot512(codes: &[__m512i; 4], a: *const i8) -> __m512i {
    dot512_with(codes, &activations512(a))
}

/// The four activation vectors of one 256-chunk in the 2-bit layout, from `a`.
/// (Not `array::from_fn`: its closure can stay an out-of-line call per vector, which
/// made the TQ2_0 GEMV 40 times slower when the closure held the `dpbusd`s.)
#[inline(always)]
pub(super) unsafe fn activations512(a: *const i8) -> [__m512i; 4] {
    let load = |g: usize| _mm512_loadu_si512(a.add(64 * g) as *const __m512i);
    [load(0), load(1), load(2), load(3)]
}

/// [`dot512`] with the activations already loaded (to share them across rows).
#[inline(always)]
pub(super) unsafe fn dot512_with(codes: &[__m512i; 4], act: &[__m512i; 4]) -> __m512i {
    let mut acc = _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes[0], act[0]);
    acc = _mm512_dpbusd_epi32(acc, codes[1], act[1]);
    acc = _mm512_dpbusd_epi32(acc, codes[2], act[2]);
    _mm512_dpbusd_epi32(acc, codes[3], act[3])
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
        // Every line, as the kernels do: one prefetch per 128 bytes left half the
        // lines to the hardware prefetcher and the baseline below the kernels.
        _mm_prefetch::<_MM_HINT_T0>(q.wrapping_add(PREFETCH) as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(q.wrapping_add(PREFETCH + 64) as *const i8);
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
