//! GEMV (`n = 1`) on AVX-512 for the 2-bit formats, with everything in registers, so
//! a row costs its `dpbusd`s, its decode and little else: four rows per call
//! ([`tq2x4`], [`i2s4`]; [`tq2`] and [`i2s`] take a piece's last rows).
//!
//! - TQ2_0 reduces sixteen chunk dots (four chunks of four rows) at once and adds
//!   `d_c · (dot_c as f32)` into a register in chunk order, per row: the shared
//!   scalar combine's roundings, without the memory round trip per chunk that made
//!   the general kernel a third slower than the memory system.
//! - I2_S has one scale per tensor, so its unsigned dots accumulate over the whole
//!   row in registers (codes left unshifted, see [`i2s`]) and are reduced once.
//!
//! Both prefetch ahead of the row stream, which runs on into the next rows of the same
//! thread: TQ2_0 into L2 ([`TQ2X4_AHEAD`]; the one-row [`tq2`] `PREFETCH` bytes into
//! L1), I2_S in two steps (see [`I2S_FAR`] and [`i2s4`]).

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::super::Prepared;
use super::{
    PREFETCH, activations512, add_scaled4, decode512, dot512, dot512_with, prefetch_span, reduce4,
    scaled1,
};
use crate::format::tq2_0;
use crate::quant::CHUNK;

/// I2_S prefetches in two steps: lines 8 KiB ahead into L2, then 1 KiB ahead into L1.
/// Measured cold at 6912×2560 with 2 threads on the Zen 4 runner, against the single
/// 4 KiB L1 step the other kernels use: 136–153 µs instead of 155–175 when the read
/// baseline gets 30–33 GB/s, and 116–124 µs instead of 155–160 when it gets 42–44
/// (roofline 0.83–0.87 instead of 0.63–0.66). The one-row TQ2_0 kernel and TQ1_0, which
/// spend more work per byte, were no faster with it (TQ2_0 up to 30 % slower), nor was
/// the read baseline.
const I2S_NEAR: usize = 1024;
const I2S_FAR: usize = 8192;

/// TQ2_0 row: `Σ_c d_c · (dot_c as f32)` in chunk order, before the activation scale
/// (a piece's last rows; four at a time go through [`tq2x4`]).
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
        prefetch_span::<PREFETCH, 0>(p, 4 * STRIDE);
        let s = reduce4(
            dot512(&decode512(p, false), a.add(c * CHUNK)),
            dot512(&decode512(p.add(STRIDE), false), a.add((c + 1) * CHUNK)),
            dot512(&decode512(p.add(2 * STRIDE), false), a.add((c + 2) * CHUNK)),
            dot512(&decode512(p.add(3 * STRIDE), false), a.add((c + 3) * CHUNK)),
        );
        acc = add_scaled4(acc, s, prep.sums.as_ptr().add(c), p, STRIDE, 64);
        c += 4;
    }
    while c < full {
        let p = base.add(c * STRIDE);
        let dot = _mm512_reduce_add_epi32(dot512(&decode512(p, false), a.add(c * CHUNK)))
            - *prep.sums.get_unchecked(c);
        acc += scaled1(dot, p, 64);
        c += 1;
    }
    acc
}

/// I2_S row: `Σ c·a` over the row's `full` chunks with unsigned codes (the caller
/// subtracts the activation sums and adds the half-chunk tail).
///
/// The codes are not shifted down: `w & (3 << 2j)` is `4^j ·` the code at shift
/// `2j`, so each shift position gets its own accumulator (exactly `4^j ×` its dot)
/// and the row's total is `Σ_j acc_j >> 2j` — four ANDs per 256 codes instead of
/// three shifts and four ANDs. A code byte's product stays within `dpbusd`'s exact
/// int32 range (`192 · 128` per byte).
///
/// # Safety
/// AVX-512 F/BW/VNNI; `row` holds `full` 64-byte chunks; `prep` as for [`tq2`].
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,f16c")]
pub(crate) unsafe fn i2s(row: &[u8], full: usize, prep: &Prepared) -> i32 {
    let base = row.as_ptr();
    let a = prep.values.as_ptr();
    let masks = [0x03u8, 0x0c, 0x30, 0xc0].map(|m| _mm512_set1_epi8(m as i8));
    // Per shift position j, for even and odd chunks (so consecutive chunks' `dpbusd`s
    // do not wait on each other).
    let mut acc = [[_mm512_setzero_si512(); 4]; 2];
    let mut c = 0;
    while c < full {
        let p = base.add(c * 64);
        prefetch_span::<I2S_NEAR, I2S_FAR>(p, 128);
        for (half, set) in acc.iter_mut().enumerate() {
            if c + half == full {
                break;
            }
            let w = _mm512_loadu_si512(p.add(64 * half) as *const __m512i);
            let x = a.add((c + half) * CHUNK);
            for (j, acc) in set.iter_mut().enumerate() {
                // I2_S keeps activation group g at shift 6 − 2g.
                let act = _mm512_loadu_si512(x.add(64 * (3 - j)) as *const __m512i);
                *acc = _mm512_dpbusd_epi32(*acc, _mm512_and_si512(w, masks[j]), act);
            }
        }
        c += 2;
    }
    // Each accumulator shifted back on its own: their sum at shift 6 could pass 2³¹
    // (a stored code 3 at the largest K), and a wrapped sum shifts wrong.
    let total = _mm512_add_epi32(i2s_unshift(&acc[0]), i2s_unshift(&acc[1]));
    _mm512_reduce_add_epi32(total)
}

/// [`i2s4`]'s L1 prefetch distance, in chunks of each of the four rows: measured cold
/// with 2 threads (6912×2560, 2560×6912) against 2, 4 and 16 chunks, and against only
/// the L2 stream, which left the kernel 5 % slower than the one-row [`i2s`].
const I2S4_NEAR_CHUNKS: usize = 8;

/// `Σ_j acc_j >> 2j`: I2_S sums per shift position `j` (each exactly `4^j ×` its dot,
/// see [`i2s`]) brought back to the code scale and added.
#[inline(always)]
unsafe fn i2s_unshift(acc: &[__m512i; 4]) -> __m512i {
    _mm512_add_epi32(
        _mm512_add_epi32(acc[0], _mm512_srai_epi32::<2>(acc[1])),
        _mm512_add_epi32(
            _mm512_srai_epi32::<4>(acc[2]),
            _mm512_srai_epi32::<6>(acc[3]),
        ),
    )
}

/// Chunks [`i2s4`] accumulates before shifting its sums back to the code scale: one
/// lane's sum at shift 6 gains at most `4 · 192 · 128` per chunk (a stored code 3,
/// which no encoder writes, against an activation of ±127 or −128), so 2¹⁴ chunks keep
/// it below 2³¹ where [`MAX_K`](crate::matrix::MAX_K)'s 32767 chunks would not; a
/// wrapped sum, shifted, would differ from the oracle.
const I2S4_SEGMENT: usize = 1 << 14;

/// I2_S GEMV for four consecutive rows (`rows` holds exactly their bytes, `row_bytes`
/// each): per row the same unsigned total as [`i2s`], the four in lanes 0..4.
///
/// The four rows share each activation load, which [`i2s`] repeats per row: with the
/// prefetches, five 64-byte loads per 256 weights were what held that kernel at
/// about 7.8 cycles per chunk hot (one row, 512×2560: 2.2 → 1.65 ns per 256 weights
/// here). Memory is read at four places at once (one per row), so the prefetches go
/// in two streams: every line of the stretch [`I2S_FAR`] ahead (at least one
/// stretch) into L2, as one ascending stream, and each row's line
/// [`I2S4_NEAR_CHUNKS`] chunks ahead into L1 (past a row's end: the same row of the
/// next stretch).
///
/// # Safety
/// AVX-512 F/BW/VNNI; `rows.len() == 4 * row_bytes` and each row holds `full` whole
/// 64-byte chunks; `prep` as for [`tq2`].
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,f16c")]
pub(crate) unsafe fn i2s4(rows: &[u8], row_bytes: usize, full: usize, prep: &Prepared) -> [i32; 4] {
    debug_assert_eq!(rows.len(), 4 * row_bytes);
    let base = rows.as_ptr();
    let a = prep.values.as_ptr();
    let masks = [0x03u8, 0x0c, 0x30, 0xc0].map(|m| _mm512_set1_epi8(m as i8));
    let far = (4 * row_bytes).max(I2S_FAR);
    // Per row, the shifted-back sums of the segments so far.
    let mut rows_total = [_mm512_setzero_si512(); 4];
    let mut start = 0;
    while start < full {
        let end = full.min(start + I2S4_SEGMENT);
        // Per row r and shift position j, as in `i2s`.
        let mut acc = [[_mm512_setzero_si512(); 4]; 4];
        for c in start..end {
            let stream = base.wrapping_add(far + 256 * c);
            for line in [0, 64, 128, 192] {
                _mm_prefetch::<_MM_HINT_T1>(stream.wrapping_add(line) as *const i8);
            }
            let ahead = c + I2S4_NEAR_CHUNKS;
            let near = if ahead < full {
                64 * ahead
            } else {
                4 * row_bytes + 64 * (ahead - full)
            };
            for r in 0..4 {
                _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add(r * row_bytes + near) as *const i8);
            }
            let x = a.add(c * CHUNK);
            // I2_S keeps activation group g at shift 6 − 2g. (Indexed by hand, not
            // `array::from_fn`: see `activations512`.)
            let act = activations512(x);
            let act = [act[3], act[2], act[1], act[0]];
            for (r, set) in acc.iter_mut().enumerate() {
                let w = _mm512_loadu_si512(base.add(r * row_bytes + 64 * c) as *const __m512i);
                for (j, acc) in set.iter_mut().enumerate() {
                    *acc = _mm512_dpbusd_epi32(*acc, _mm512_and_si512(w, masks[j]), act[j]);
                }
            }
        }
        for (sum, set) in rows_total.iter_mut().zip(&acc) {
            *sum = _mm512_add_epi32(*sum, i2s_unshift(set));
        }
        start = end;
    }
    let s = reduce4(rows_total[0], rows_total[1], rows_total[2], rows_total[3]);
    let mut out = [0i32; 4];
    _mm_storeu_si128(out.as_mut_ptr() as *mut __m128i, s);
    out
}

/// Sums each of sixteen int32 vectors: lane `i` of the result is `Σ v[i]`, in 45
/// shuffles and adds (four [`reduce4`]s and their assembly would take 55).
#[inline(always)]
unsafe fn reduce16(v: &[__m512i; 16]) -> __m512i {
    // Per 128-bit lane L of `t(k)`: [a0+a2, b0+b2, a1+a3, b1+b3] of a = v[2k], b = v[2k+1].
    // (Closures called by index, not `array::from_fn`: see `activations512`.)
    let t = |k: usize| {
        let (a, b) = (v[2 * k], v[2 * k + 1]);
        _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b))
    };
    // Per 128-bit lane of `u[k]`: that lane's sums of v[4k..4k + 4].
    let fold = |a: __m512i, b: __m512i| {
        _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b))
    };
    let u = [
        fold(t(0), t(1)),
        fold(t(2), t(3)),
        fold(t(4), t(5)),
        fold(t(6), t(7)),
    ];
    // 128-bit lanes [u0 half 0, u0 half 1, u1 half 0, u1 half 1], where half h holds
    // lanes 2h and 2h + 1 added.
    let halves = |a: __m512i, b: __m512i| {
        _mm512_add_epi32(
            _mm512_shuffle_i32x4::<0x88>(a, b),
            _mm512_shuffle_i32x4::<0xDD>(a, b),
        )
    };
    halves(halves(u[0], u[1]), halves(u[2], u[3]))
}

/// How far ahead [`tq2x4`] prefetches into L2: at least this many bytes, rounded up to
/// whole groups of four rows. Measured cold with 2 threads on the Zen 4 runner
/// (6912×2560, interleaved): 4, 8, 12 and 16 KiB alike (160–185 µs); L1 (`T0`) hints
/// instead, 200–300 µs; an added L1 stream per row 4 or 8 chunks ahead, 190–250 µs.
const TQ2X4_AHEAD: usize = 8192;

/// The dots of one TQ2_0 chunk of each of four rows (row `r` at `row(r)`) with the
/// chunk's four activation vectors `act`.
#[inline(always)]
unsafe fn tq2_column(row: impl Fn(usize) -> *const u8, act: &[__m512i; 4]) -> [__m512i; 4] {
    let dot = |r: usize| dot512_with(&decode512(row(r), false), act);
    [dot(0), dot(1), dot(2), dot(3)]
}

/// The four activation vectors of chunk `c` in the 2-bit layout.
#[inline(always)]
unsafe fn chunk_activations(prep: &Prepared, c: usize) -> [__m512i; 4] {
    activations512(prep.values.as_ptr().add(c * CHUNK))
}

/// TQ2_0 GEMV for four consecutive rows (`rows` holds exactly their bytes, `row_bytes`
/// each): per row [`tq2`]'s chunk-order scaled sum, the four in lanes 0..4.
///
/// Tiles of four chunks × four rows: each activation vector is loaded once for the
/// four rows, the sixteen chunk dots are reduced together ([`reduce16`], lane
/// `4·chunk + row`), scaled in one multiply and added into the four rows' sums one
/// chunk (one 128-bit lane) at a time: per row the scalar combine's roundings, in
/// order. The last chunks (fewer than four) go one at a time across the rows.
/// Against [`tq2`] per row: hot, one thread, 512×2560, 3.17 → 2.49 ns per chunk.
///
/// The four rows are one stretch of memory, prefetched into L2 as one stream
/// [`TQ2X4_AHEAD`] ahead, advancing by exactly the bytes each step consumes.
///
/// # Safety
/// AVX-512 F/BW/VL/VNNI and F16C; `rows.len() == 4 * row_bytes`, each row holds
/// `full` 66-byte blocks; `prep` as for [`tq2`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,f16c")]
pub(crate) unsafe fn tq2x4(
    rows: &[u8],
    row_bytes: usize,
    full: usize,
    prep: &Prepared,
) -> [f32; 4] {
    const STRIDE: usize = tq2_0::BLOCK_BYTES;
    debug_assert_eq!(rows.len(), 4 * row_bytes);
    let base = rows.as_ptr();
    let group = 4 * row_bytes;
    let ahead = TQ2X4_AHEAD.div_ceil(group.max(1)) * group;
    // Block (row r, chunk c) and its f16 scale.
    let block = |r: usize, c: usize| base.add(r * row_bytes + c * STRIDE);
    let scale = |r: usize, c: usize| block(r, c).add(64).cast::<i16>().read_unaligned();
    // Lane 4·cc + r of the tile takes chunk cc's activation sum.
    let spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    let mut acc = _mm_setzero_ps();
    let mut c = 0;
    while c + 4 <= full {
        prefetch_l2(base.wrapping_add(ahead + 4 * STRIDE * c), 16 * STRIDE);
        let mut v = [_mm512_setzero_si512(); 16];
        for cc in 0..4 {
            let dots = tq2_column(|r| block(r, c + cc), &chunk_activations(prep, c + cc));
            v[4 * cc..4 * cc + 4].copy_from_slice(&dots);
        }
        let sums = _mm512_permutexvar_epi32(
            spread,
            _mm512_castsi128_si512(_mm_loadu_si128(prep.sums.as_ptr().add(c) as *const __m128i)),
        );
        let dots = _mm512_cvtepi32_ps(_mm512_sub_epi32(reduce16(&v), sums));
        let s = |i: usize| scale(i % 4, c + i / 4);
        let d = _mm512_cvtph_ps(_mm256_set_epi16(
            s(15),
            s(14),
            s(13),
            s(12),
            s(11),
            s(10),
            s(9),
            s(8),
            s(7),
            s(6),
            s(5),
            s(4),
            s(3),
            s(2),
            s(1),
            s(0),
        ));
        let prod = _mm512_mul_ps(d, dots);
        acc = _mm_add_ps(acc, _mm512_castps512_ps128(prod));
        acc = _mm_add_ps(acc, _mm512_extractf32x4_ps::<1>(prod));
        acc = _mm_add_ps(acc, _mm512_extractf32x4_ps::<2>(prod));
        acc = _mm_add_ps(acc, _mm512_extractf32x4_ps::<3>(prod));
        c += 4;
    }
    if c < full {
        prefetch_l2(
            base.wrapping_add(ahead + 4 * STRIDE * c),
            4 * STRIDE * (full - c),
        );
    }
    while c < full {
        let v = tq2_column(|r| block(r, c), &chunk_activations(prep, c));
        let dots = _mm_cvtepi32_ps(_mm_sub_epi32(
            reduce4(v[0], v[1], v[2], v[3]),
            _mm_set1_epi32(*prep.sums.get_unchecked(c)),
        ));
        let d = _mm_cvtph_ps(_mm_set_epi16(
            0,
            0,
            0,
            0,
            scale(3, c),
            scale(2, c),
            scale(1, c),
            scale(0, c),
        ));
        acc = _mm_add_ps(acc, _mm_mul_ps(d, dots));
        c += 1;
    }
    let mut out = [0.0f32; 4];
    _mm_storeu_ps(out.as_mut_ptr(), acc);
    out
}

/// L2 prefetches (`T1`) of every line of `bytes` bytes from `p`.
#[inline(always)]
unsafe fn prefetch_l2(p: *const u8, bytes: usize) {
    let mut q = 0;
    while q < bytes {
        _mm_prefetch::<_MM_HINT_T1>(p.wrapping_add(q) as *const i8);
        q += 64;
    }
}
