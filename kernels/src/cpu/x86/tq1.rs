//! TQ1_0 (five base-3 trits per byte) on AVX-512 VNNI and AVX2.

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::super::{MAX_N, Prepared, TQ1_PREPARED};
use super::{PREFETCH, reduce4};

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
    let mut acc = [0.0f32; MAX_N];
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
            let a = prep.values.as_ptr().add(r * prep.stride + c * TQ1_PREPARED);
            let s = reduce4(
                dot_tq1(&codes[0], a),
                dot_tq1(&codes[1], a.add(TQ1_PREPARED)),
                dot_tq1(&codes[2], a.add(2 * TQ1_PREPARED)),
                dot_tq1(&codes[3], a.add(3 * TQ1_PREPARED)),
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
            let a = prep.values.as_ptr().add(r * prep.stride + c * TQ1_PREPARED);
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
