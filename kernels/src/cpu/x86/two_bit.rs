//! One 2-bit weight row (TQ2_0 or I2_S) at a time, as int32 chunk dots: the AVX2
//! GEMV/GEMM (the shared combine forms the floats), and on AVX-512 the chunk dots the
//! bit-exactness tests compare.

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::super::Prepared;
use super::{Layout, PREFETCH, decode512, dot512, reduce4};
use crate::quant::CHUNK;

/// AVX-512 VNNI: `out[r * chunks + c]` for the row's `full` 256-weight chunks — the
/// per-chunk int32 dots that `CpuKernels::row_chunk_dots` exposes to the bit-exactness
/// tests (the GEMV and GEMM themselves run the `gemv` and `gemm` kernels). Chunks go
/// four at a time: sixteen code registers decoded once serve every activation row,
/// and the four chunk sums of a row are reduced together.
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
) {
    let n = prep.n;
    let base = row.as_ptr();
    let mut c = 0;
    while c + 4 <= full {
        let p = base.add(c * layout.chunk_stride);
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
            _mm_storeu_si128(
                out.as_mut_ptr().add(at) as *mut __m128i,
                _mm_sub_epi32(s, sums),
            );
        }
        c += 4;
    }
    while c < full {
        let codes = decode512(base.add(c * layout.chunk_stride), layout.reversed);
        for r in 0..n {
            let a = prep.values.as_ptr().add(r * prep.stride + c * CHUNK);
            *out.get_unchecked_mut(r * chunks + c) = _mm512_reduce_add_epi32(dot512(&codes, a))
                - *prep.sums.get_unchecked(r * chunks + c);
        }
        c += 1;
    }
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
                super::gemv_avx2::hsum(acc) - *prep.sums.get_unchecked(r * chunks + c);
        }
    }
}
