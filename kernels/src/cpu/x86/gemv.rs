//! GEMV (`n = 1`) on AVX-512 for the 2-bit formats: one weight row per call with
//! everything in registers, so a row costs its `dpbusd`s, its decode and little else.
//!
//! - TQ2_0 reduces four chunks at once and adds `d_c · (dot_c as f32)` into a
//!   register in chunk order: the shared scalar combine's roundings, without the
//!   memory round trip per chunk that made the general kernel a third slower than
//!   the memory system.
//! - I2_S has one scale per tensor, so its unsigned dots accumulate over the whole
//!   row in two vector registers and are reduced once.
//!
//! Both prefetch `PREFETCH` bytes ahead of the row stream, which runs on into the
//! next rows of the same thread.

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::super::Prepared;
use super::{decode512, dot512, prefetch_span, reduce4};
use crate::format::tq2_0;
use crate::quant::CHUNK;

/// TQ2_0 row: `Σ_c d_c · (dot_c as f32)` in chunk order, before the activation scale.
///
/// # Safety
/// AVX-512 F/BW/VNNI and F16C; `row` holds `full` 66-byte blocks; `prep` is in the
/// 2-bit layout with one activation row.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,f16c")]
pub(crate) unsafe fn tq2(row: &[u8], full: usize, prep: &Prepared) -> f32 {
    const STRIDE: usize = tq2_0::BLOCK_BYTES;
    let base = row.as_ptr();
    let a = prep.values.as_ptr();
    let mut acc = 0.0f32;
    let mut c = 0;
    while c + 4 <= full {
        let p = base.add(c * STRIDE);
        prefetch_span(p, 4 * STRIDE);
        let s = reduce4(
            dot512(&decode512(p, false), a.add(c * CHUNK)),
            dot512(&decode512(p.add(STRIDE), false), a.add((c + 1) * CHUNK)),
            dot512(&decode512(p.add(2 * STRIDE), false), a.add((c + 2) * CHUNK)),
            dot512(&decode512(p.add(3 * STRIDE), false), a.add((c + 3) * CHUNK)),
        );
        let sums = _mm_loadu_si128(prep.sums.as_ptr().add(c) as *const __m128i);
        let dots = _mm_cvtepi32_ps(_mm_sub_epi32(s, sums));
        let d = _mm_cvtph_ps(_mm_set_epi16(
            0,
            0,
            0,
            0,
            p.add(3 * STRIDE + 64).cast::<i16>().read_unaligned(),
            p.add(2 * STRIDE + 64).cast::<i16>().read_unaligned(),
            p.add(STRIDE + 64).cast::<i16>().read_unaligned(),
            p.add(64).cast::<i16>().read_unaligned(),
        ));
        let prod = _mm_mul_ps(d, dots);
        // Left to right in chunk order, as the scalar combine adds.
        acc += _mm_cvtss_f32(prod);
        acc += _mm_cvtss_f32(_mm_shuffle_ps::<1>(prod, prod));
        acc += _mm_cvtss_f32(_mm_shuffle_ps::<2>(prod, prod));
        acc += _mm_cvtss_f32(_mm_shuffle_ps::<3>(prod, prod));
        c += 4;
    }
    while c < full {
        let p = base.add(c * STRIDE);
        let dot = _mm512_reduce_add_epi32(dot512(&decode512(p, false), a.add(c * CHUNK)))
            - *prep.sums.get_unchecked(c);
        let d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(
            p.add(64).cast::<u16>().read_unaligned(),
        ))));
        acc += d * dot as f32;
        c += 1;
    }
    acc
}

/// I2_S row: `Σ c·a` over the row's `full` chunks with unsigned codes (the caller
/// subtracts the activation sums and adds the half-chunk tail).
///
/// # Safety
/// AVX-512 F/BW/VNNI; `row` holds `full` 64-byte chunks; `prep` as for [`tq2`].
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,f16c")]
pub(crate) unsafe fn i2s(row: &[u8], full: usize, prep: &Prepared) -> i32 {
    let base = row.as_ptr();
    let a = prep.values.as_ptr();
    // Two accumulators so consecutive chunks' `dpbusd` chains overlap.
    let (mut even, mut odd) = (_mm512_setzero_si512(), _mm512_setzero_si512());
    let mut c = 0;
    while c + 2 <= full {
        let p = base.add(c * 64);
        prefetch_span(p, 128);
        even = _mm512_add_epi32(even, dot512(&decode512(p, true), a.add(c * CHUNK)));
        odd = _mm512_add_epi32(
            odd,
            dot512(&decode512(p.add(64), true), a.add((c + 1) * CHUNK)),
        );
        c += 2;
    }
    if c < full {
        even = _mm512_add_epi32(
            even,
            dot512(&decode512(base.add(c * 64), true), a.add(c * CHUNK)),
        );
    }
    _mm512_reduce_add_epi32(_mm512_add_epi32(even, odd))
}
