//! TQ1_0 (five base-3 trits per byte) on AVX-512 VNNI and AVX2.

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::super::{Prepared, TQ1_DENSE, TQ1_DENSE_QH, TQ1_DENSE_THIRD, TQ1_PREPARED};
use super::gemv_avx2;
use super::{PREFETCH, add_scaled4, prefetch_span, reduce4, scaled1};
use crate::quant::{CHUNK, QuantizedActivations};

/// Dots of [`powers`] vectors come out 256 times the trit dot (see [`dot_powers`]).
const TRIT_SHIFT: u32 = 8;

/// Defines `3 · q mod 256` per byte, as two `vpaddb`s, for one vector width. Written
/// in `asm!` because LLVM turns `q + q + q` into a byte multiply, which x86 lacks and
/// emulates with 16-bit multiplies and shuffles (measured: the whole TQ1_0 kernel a
/// quarter slower).
macro_rules! times3_fn {
    ($(#[$doc:meta])* $vis:vis $name:ident, $ty:ty, $reg:ident, $features:literal) => {
        $(#[$doc])*
        #[inline]
        #[target_feature(enable = $features)]
        $vis unsafe fn $name(q: $ty) -> $ty {
            let out: $ty;
            // SAFETY: register-only byte adds; the features are enabled for this function.
            std::arch::asm!(
                "vpaddb {t}, {q}, {q}",
                "vpaddb {o}, {t}, {q}",
                q = in($reg) q,
                t = out($reg) _,
                o = lateout($reg) out,
                options(pure, nomem, nostack, preserves_flags),
            );
            out
        }
    };
}

times3_fn!(
    /// `3 · q mod 256` per byte of a 512-bit vector.
    times3, __m512i, zmm_reg, "avx512f,avx512bw"
);
times3_fn!(
    /// `3 · q mod 256` per byte of a 256-bit vector.
    pub(super) times3_256, __m256i, ymm_reg, "avx2"
);
times3_fn!(
    /// `3 · q mod 256` per byte of a 128-bit vector.
    times3_128, __m128i, xmm_reg, "avx2"
);

/// `q_t = b · 3ᵗ mod 256` for t = 0..=5 over one TQ1_0 block's 52 code bytes (masked
/// load: the scale and the bytes after the block are never read as codes; byte-wise
/// wrapping adds compute `· 3 mod 256` exactly).
#[inline(always)]
unsafe fn powers(p: *const u8) -> [__m512i; 6] {
    powers_of(_mm512_maskz_loadu_epi8((1u64 << 52) - 1, p as *const i8))
}

#[inline(always)]
unsafe fn powers_of(q0: __m512i) -> [__m512i; 6] {
    let q1 = times3(q0);
    let q2 = times3(q1);
    let q3 = times3(q2);
    let q4 = times3(q3);
    [q0, q1, q2, q3, q4, times3(q4)]
}

/// 256 × the unsigned trit dot of one block, per lane, without extracting a trit.
///
/// Trit `t` of a byte is the top trit of `q_t`: `trit_t = (3·q_t − q_{t+1}) / 256`
/// exactly, since `q_{t+1} = 3·q_t mod 256`. So `256 · Σ_t trit_t·a_t =
/// 3 · Σ_t q_t·a_t − Σ_t q_{t+1}·a_t`: ten `dpbusd`s (u8 `q` × i8 `a`, exact in
/// int32) and a multiply by 3, instead of five `dpbusd`s and about 25 byte ops of
/// trit extraction — on Zen 4 the byte ops, not the `dpbusd`s, bounded the kernel.
#[inline(always)]
unsafe fn dot_powers(q: &[__m512i; 6], a: *const i8) -> __m512i {
    let (mut d1, mut d2) = (_mm512_setzero_si512(), _mm512_setzero_si512());
    for t in 0..5 {
        let x = _mm512_loadu_si512(a.add(64 * t) as *const __m512i);
        d1 = _mm512_dpbusd_epi32(d1, q[t], x);
        d2 = _mm512_dpbusd_epi32(d2, q[t + 1], x);
    }
    _mm512_sub_epi32(_mm512_add_epi32(d1, _mm512_add_epi32(d1, d1)), d2)
}

/// [`dot_powers`] of four blocks (block `b` at `p[b]` with its activations at
/// `a[b]`), each reduced to one lane: `256 ·` the four unsigned trit dots.
///
/// Same arithmetic, trit position by trit position across the four blocks rather than
/// block by block: the `dpbusd` and `vpaddb` chains of four blocks then come
/// interleaved in program order, which Zen 4's scheduler turns into overlap (hot GEMV
/// 5.07 → 4.53 ns per block on the 2-vCPU runner, with the four-row GEMV below).
#[inline(always)]
unsafe fn dot_powers4(p: [*const u8; 4], a: [*const i8; 4]) -> __m128i {
    // A loop, not `p.map(..)`: an array `map` over SIMD code can stay an out-of-line
    // closure, one call per vector (measured 30x slower in the AVX2 TQ1_0 decode).
    let mut q = [_mm512_setzero_si512(); 4];
    for (q, &p) in q.iter_mut().zip(&p) {
        *q = _mm512_maskz_loadu_epi8((1u64 << 52) - 1, p as *const i8);
    }
    let mut d1 = [_mm512_setzero_si512(); 4];
    let mut d2 = [_mm512_setzero_si512(); 4];
    for t in 0..5 {
        for b in 0..4 {
            let x = _mm512_loadu_si512(a[b].add(64 * t) as *const __m512i);
            let next = times3(q[b]);
            d1[b] = _mm512_dpbusd_epi32(d1[b], q[b], x);
            d2[b] = _mm512_dpbusd_epi32(d2[b], next, x);
            q[b] = next;
        }
    }
    let e = |b: usize| {
        _mm512_sub_epi32(
            _mm512_add_epi32(d1[b], _mm512_add_epi32(d1[b], d1[b])),
            d2[b],
        )
    };
    reduce4(e(0), e(1), e(2), e(3))
}

/// The trit held in the top of `q`: `(q · 3) >> 8`, i.e. `(q ≥ 86) + (q ≥ 171)` —
/// two byte compares (measured faster on Zen 4 than llama.cpp's halving-add form),
/// then 1 where the first holds, overwritten by 2 where the second does (one op fewer
/// than adding two 0/1 vectors: GEMM n = 8 20.2 → 19.4 ns per weight block, hot).
#[inline(always)]
unsafe fn top_trit(q: __m512i) -> __m512i {
    let ge86 = _mm512_cmpge_epu8_mask(q, _mm512_set1_epi8(86));
    let ge171 = _mm512_cmpge_epu8_mask(q, _mm512_set1_epi8(171u8 as i8));
    _mm512_mask_mov_epi8(
        _mm512_maskz_mov_epi8(ge86, _mm512_set1_epi8(1)),
        ge171,
        _mm512_set1_epi8(2),
    )
}

/// The five trit vectors of one block, for kernels that reuse them across activation
/// rows (there five `dpbusd`s per row beat [`dot_powers`]' ten).
#[inline(always)]
pub(super) unsafe fn trits(p: *const u8) -> [__m512i; 5] {
    let q = powers(p);
    [
        top_trit(q[0]),
        top_trit(q[1]),
        top_trit(q[2]),
        top_trit(q[3]),
        top_trit(q[4]),
    ]
}

#[inline(always)]
unsafe fn dot_trits(codes: &[__m512i; 5], a: *const i8) -> __m512i {
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

/// AVX-512 VNNI for TQ1_0: `out[r * chunks + c]` for every block of the row — the
/// per-block int32 dots `CpuKernels::row_chunk_dots` exposes to the bit-exactness
/// tests (the GEMV and GEMM run [`gemv_tq1_avx512`] and the `gemm` microkernel).
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VNNI; `row` must hold `chunks` 54-byte blocks
/// and `prep` must be in the TQ1_0 layout.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,f16c")]
pub(crate) unsafe fn row_dots_tq1_avx512(
    row: &[u8],
    prep: &Prepared,
    chunks: usize,
    out: &mut [i32],
) {
    const STRIDE: usize = crate::format::tq1_0::BLOCK_BYTES;
    for c in 0..chunks {
        let codes = trits(row.as_ptr().add(c * STRIDE));
        for r in 0..prep.n {
            let a = prep.values.as_ptr().add(r * prep.stride + c * TQ1_PREPARED);
            *out.get_unchecked_mut(r * chunks + c) = _mm512_reduce_add_epi32(dot_trits(&codes, a))
                - *prep.sums.get_unchecked(r * chunks + c);
        }
    }
}

/// GEMV (`n = 1`) for one TQ1_0 row: `Σ_c d_c · (dot_c as f32)` in block order with
/// the sum in a register (the general kernel above keeps one per activation row in
/// memory, a store-forward chain per block), before the activation scale.
///
/// # Safety
/// As [`row_dots_tq1_avx512`], with one activation row.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,f16c")]
pub(crate) unsafe fn gemv_tq1_avx512(row: &[u8], chunks: usize, prep: &Prepared) -> f32 {
    const STRIDE: usize = crate::format::tq1_0::BLOCK_BYTES;
    let base = row.as_ptr();
    let a = prep.values.as_ptr();
    let mut acc = 0.0f32;
    let mut c = 0;
    while c + 4 <= chunks {
        let p = base.add(c * STRIDE);
        prefetch_span::<PREFETCH, 0>(p, 4 * STRIDE);
        let a = a.add(c * TQ1_PREPARED);
        let s = dot_powers4(
            [0, 1, 2, 3].map(|b| p.add(b * STRIDE)),
            [0, 1, 2, 3].map(|b| a.add(b * TQ1_PREPARED)),
        );
        let s = _mm_srai_epi32::<{ TRIT_SHIFT as i32 }>(s);
        acc = add_scaled4(acc, s, prep.sums.as_ptr().add(c), p, STRIDE, 52);
        c += 4;
    }
    while c < chunks {
        let p = base.add(c * STRIDE);
        let dot = (_mm512_reduce_add_epi32(dot_powers(&powers(p), a.add(c * TQ1_PREPARED)))
            >> TRIT_SHIFT)
            - *prep.sums.get_unchecked(c);
        acc += scaled1(dot, p, 52);
        c += 1;
    }
    acc
}

/// One trit position of [`gemv4_tq1_avx512`]'s three packed vectors: `q · 3 mod 256`
/// and both `dpbusd`s of each, in `asm!` so that the three vectors' chains stay
/// interleaved in program order (LLVM otherwise runs one vector's chains after the
/// other's: 4.85 ns per block hot instead of 4.40–4.48).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn dense_step(
    q: [__m512i; 3],
    d1: &mut [__m512i; 3],
    d2: &mut [__m512i; 3],
    a01: __m512i,
    a2: __m512i,
) -> [__m512i; 3] {
    let (n0, n1, n2): (__m512i, __m512i, __m512i);
    // SAFETY: register-only byte adds and dpbusds; AVX-512 BW/VNNI are enabled here.
    std::arch::asm!(
        "vpaddb {n0}, {q0}, {q0}",
        "vpaddb {n1}, {q1}, {q1}",
        "vpaddb {n2}, {q2}, {q2}",
        "vpdpbusd {e0}, {q0}, {a01}",
        "vpdpbusd {e1}, {q1}, {a01}",
        "vpdpbusd {e2}, {q2}, {a2}",
        "vpaddb {n0}, {n0}, {q0}",
        "vpaddb {n1}, {n1}, {q1}",
        "vpaddb {n2}, {n2}, {q2}",
        "vpdpbusd {f0}, {n0}, {a01}",
        "vpdpbusd {f1}, {n1}, {a01}",
        "vpdpbusd {f2}, {n2}, {a2}",
        q0 = in(zmm_reg) q[0],
        q1 = in(zmm_reg) q[1],
        q2 = in(zmm_reg) q[2],
        a01 = in(zmm_reg) a01,
        a2 = in(zmm_reg) a2,
        e0 = inout(zmm_reg) d1[0],
        e1 = inout(zmm_reg) d1[1],
        e2 = inout(zmm_reg) d1[2],
        f0 = inout(zmm_reg) d2[0],
        f1 = inout(zmm_reg) d2[1],
        f2 = inout(zmm_reg) d2[2],
        n0 = out(zmm_reg) n0,
        n1 = out(zmm_reg) n1,
        n2 = out(zmm_reg) n2,
        options(nomem, nostack, preserves_flags),
    );
    [n0, n1, n2]
}

/// GEMV for four consecutive TQ1_0 rows (`rows` holds exactly their bytes), one block
/// of each per step: per row the same `Σ_c d_c · (dot_c as f32)` in block order as
/// [`gemv_tq1_avx512`], bit for bit (lane `j` adds row `j`'s terms one by one).
///
/// The four blocks' 192 `qs` bytes are packed into three full vectors — rows A and B's
/// first 32 bytes, rows C and D's, and the four rows' last 16 — instead of four
/// vectors with 12 empty lanes each. Their activations are the same for all four rows
/// and come pre-packed to match ([`Prepared::dense`]): the A, B and C, D vectors'
/// as whole loads (broadcasting them here cost 6 % of the kernel), the third's as a
/// 16-byte broadcast (pre-packing it too made the layout too big for L1 at K = 6912).
/// The 16 `qh` bytes (four trits each) go through 128-bit vectors, where each int32
/// lane is one row's whole `qh` dot. Per step that is 30 `dpbusd`s and 30 `vpaddb`s on
/// 512-bit vectors instead of 40 each. Each column's reduction runs woven into the
/// next column's steps ([`column()`]).
///
/// Hot, one thread, 512×2560 (`--example hotloop`): 4.56 ns per block for the
/// previous kernel (four separate 52-lane vectors), 4.40 packed, 4.28 pipelined, 4.16
/// with the pre-packed activations.
///
/// Memory: the four rows are one contiguous stretch, read four places at a time; it
/// is prefetched as one ascending stream (216 bytes per step), which the prefetchers
/// keep up with, where one prefetch per row did not (6912×2560 cold, 2 threads:
/// 225 → 183 µs with the same arithmetic).
///
/// # Safety
/// As [`gemv_tq1_avx512`], for all four rows; the CPU must also support AVX-512 VL;
/// `rows.len() == 4 * chunks * 54`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,f16c")]
pub(crate) unsafe fn gemv4_tq1_avx512(rows: &[u8], chunks: usize, prep: &Prepared) -> [f32; 4] {
    let row_bytes = chunks * crate::format::tq1_0::BLOCK_BYTES;
    debug_assert_eq!(rows.len(), 4 * row_bytes);
    let mut acc = _mm_setzero_ps();
    if chunks > 0 {
        let at = Stretch {
            base: rows.as_ptr(),
            row_bytes,
            chunks,
            prep,
        };
        // Software-pipelined: column c's arithmetic runs with column c − 1's reduction
        // woven between its steps, so that the reduction's dependent chain overlaps
        // independent work (hot 4.40 → 4.28 ns per block).
        let mut prev = column::<true, false>(&at, 0, None, &mut acc);
        for c in 1..chunks {
            prev = column::<true, true>(&at, c, Some(&prev), &mut acc);
        }
        column::<false, true>(&at, chunks, Some(&prev), &mut acc);
    }
    let mut out = [0.0f32; 4];
    _mm_storeu_ps(out.as_mut_ptr(), acc);
    out
}

/// Four consecutive TQ1_0 rows and the activations, for [`column()`].
struct Stretch<'a> {
    base: *const u8,
    row_bytes: usize,
    chunks: usize,
    prep: &'a Prepared,
}

/// A column's accumulators, waiting for their reduction in the next [`column()`] call.
#[derive(Clone, Copy)]
struct Column {
    d1: [__m512i; 3],
    d2: [__m512i; 3],
    h1: __m128i,
    h2: __m128i,
    scales: __m128,
    sum: i32,
}

/// Keeps `x` computed at this point of the instruction stream: the empty `asm!` is
/// ordered with [`dense_step`]'s, so LLVM cannot gather the reduction's steps into
/// one run again.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn pin(mut x: __m512i) -> __m512i {
    // SAFETY: an empty template; the operand only fixes where `x` exists.
    std::arch::asm!("/* {0} */", inout(zmm_reg) x, options(nomem, nostack, preserves_flags));
    x
}

/// [`gemv4_tq1_avx512`]'s column `c` (when `MAIN`) and the reduction and scaled sum of
/// the previous column `prev` into `acc` (when `EPI`), the latter in five pieces, one
/// after each trit position of the former.
#[inline(always)]
unsafe fn column<const MAIN: bool, const EPI: bool>(
    at: &Stretch<'_>,
    c: usize,
    prev: Option<&Column>,
    acc: &mut __m128,
) -> Column {
    const STRIDE: usize = crate::format::tq1_0::BLOCK_BYTES;
    let zero = _mm512_setzero_si512();
    let mut col = Column {
        d1: [zero; 3],
        d2: [zero; 3],
        h1: _mm_setzero_si128(),
        h2: _mm_setzero_si128(),
        scales: _mm_setzero_ps(),
        sum: 0,
    };
    let mut q = [zero; 3];
    let mut qh = _mm_setzero_si128();
    let mut packed = at.prep.dense.as_ptr();
    if MAIN {
        let p = at.base.add(c * STRIDE);
        let ahead = at.base.wrapping_add(4 * c * STRIDE + PREFETCH);
        for line in [0, 64, 128, 192] {
            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line) as *const i8);
        }
        // Whole 64-byte loads: bytes past a block are the next row's (the same
        // stretch), except after the last row's last block, which is masked off.
        let load = |b: usize| _mm512_loadu_si512(p.add(b * at.row_bytes) as *const __m512i);
        let (ra, rb, rc) = (load(0), load(1), load(2));
        let rd = if c + 1 < at.chunks {
            load(3)
        } else {
            _mm512_maskz_loadu_epi8((1u64 << STRIDE) - 1, p.add(3 * at.row_bytes) as *const i8)
        };
        // [A0 A1 B0 B1], [C0 C1 D0 D1], [A2 B2 C2 D2] by 16-byte piece; [A2 A3 B2 B3]
        // and [C2 C3 D2 D3] on the way, whose pieces 3 hold qh and the scale.
        let t1 = _mm512_shuffle_i64x2::<0xEE>(ra, rb);
        let t2 = _mm512_shuffle_i64x2::<0xEE>(rc, rd);
        q = [
            _mm512_shuffle_i64x2::<0x44>(ra, rb),
            _mm512_shuffle_i64x2::<0x44>(rc, rd),
            _mm512_shuffle_i64x2::<0x88>(t1, t2),
        ];
        // Word indices into (t1, t2): the four rows' qh (two words each), then their
        // f16 scales.
        let gather = _mm512_set_epi16(
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 58, 42, 26, 10, 57, 56, 41,
            40, 25, 24, 9, 8,
        );
        let tail = _mm512_permutex2var_epi16(t1, gather, t2);
        qh = _mm512_castsi512_si128(tail);
        col.scales = _mm_cvtph_ps(_mm512_extracti32x4_epi32::<1>(tail));
        col.sum = *at.prep.sums.get_unchecked(c);
        packed = packed.add(c * TQ1_DENSE);
    }
    // The previous column's reduction, in stages.
    let (mut s1, mut s2, mut e) = (zero, zero, zero);
    let mut dots = _mm_setzero_ps();
    for t in 0..5 {
        if MAIN {
            // Rows A, B and C, D: a whole load; the third vector: one 16-byte piece
            // broadcast (both pre-packed cost 25 % cold at K = 6912, see `Prepared`).
            let a01 = _mm512_loadu_si512(packed.add(64 * t) as *const __m512i);
            let a2 = _mm512_broadcast_i32x4(_mm_loadu_si128(
                packed.add(TQ1_DENSE_THIRD + 16 * t) as *const __m128i
            ));
            q = dense_step(q, &mut col.d1, &mut col.d2, a01, a2);
            // qh bytes hold four trits: their fifth position's activations are zero.
            if t < 4 {
                let x = _mm_loadu_si128(packed.add(TQ1_DENSE_QH + 16 * t) as *const __m128i);
                let next = times3_128(qh);
                col.h1 = _mm_dpbusd_epi32(col.h1, qh, x);
                col.h2 = _mm_dpbusd_epi32(col.h2, next, x);
                qh = next;
            }
        }
        if let (true, Some(prev)) = (EPI, prev) {
            match t {
                0 => {
                    // Per 16-byte lane j, row j's partial sums: both halves of the
                    // first two vectors' lanes, plus the third's.
                    let rows4 = |d: &[__m512i; 3]| {
                        _mm512_add_epi32(
                            _mm512_add_epi32(
                                _mm512_shuffle_i64x2::<0x88>(d[0], d[1]),
                                _mm512_shuffle_i64x2::<0xDD>(d[0], d[1]),
                            ),
                            d[2],
                        )
                    };
                    s1 = pin(rows4(&prev.d1));
                    s2 = pin(rows4(&prev.d2));
                }
                1 => {
                    e = _mm512_sub_epi32(_mm512_add_epi32(s1, _mm512_add_epi32(s1, s1)), s2);
                    e = pin(_mm512_add_epi32(e, _mm512_shuffle_epi32::<0x4E>(e)));
                }
                2 => {
                    e = _mm512_add_epi32(e, _mm512_shuffle_epi32::<0xB1>(e));
                    e = pin(_mm512_permutexvar_epi32(
                        _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0),
                        e,
                    ));
                }
                3 => {
                    let h = _mm_sub_epi32(
                        _mm_add_epi32(prev.h1, _mm_add_epi32(prev.h1, prev.h1)),
                        prev.h2,
                    );
                    let s = _mm_add_epi32(_mm512_castsi512_si128(e), h);
                    let s = _mm_srai_epi32::<{ TRIT_SHIFT as i32 }>(s);
                    dots = _mm_cvtepi32_ps(_mm_sub_epi32(s, _mm_set1_epi32(prev.sum)));
                }
                _ => *acc = _mm_add_ps(*acc, _mm_mul_ps(prev.scales, dots)),
            }
        }
    }
    col
}

/// The trit in the top of each byte of `q`, `(q · 3) >> 8`, by llama.cpp's
/// halving-add form (AVX2 has no unsigned byte compare): with `q' = q ∸ 1`, it is
/// `avg(q', avg(q', 0)) >> 6`.
#[inline(always)]
pub(super) unsafe fn top_trit_256(q: __m256i) -> __m256i {
    let q = _mm256_subs_epu8(q, _mm256_set1_epi8(1));
    let s = _mm256_avg_epu8(q, _mm256_avg_epu8(q, _mm256_setzero_si256()));
    _mm256_and_si256(_mm256_srli_epi16::<6>(s), _mm256_set1_epi8(3))
}

/// `9 · q mod 256` per byte: `(q << 3) & 0xF8` (a 16-bit shift, its carries masked
/// off) plus `q`, in `asm!` for the reason `times3_fn` gives.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn times9_256(q: __m256i) -> __m256i {
    let out: __m256i;
    // SAFETY: register-only shift, and, add; AVX2 is enabled for this function.
    std::arch::asm!(
        "vpsllw {t}, {q}, 3",
        "vpand {t}, {t}, {m}",
        "vpaddb {o}, {t}, {q}",
        q = in(ymm_reg) q,
        m = in(ymm_reg) _mm256_set1_epi8(-8),
        t = out(ymm_reg) _,
        o = lateout(ymm_reg) out,
        options(pure, nomem, nostack, preserves_flags),
    );
    out
}

/// AVX2 for TQ1_0: `out[r * chunks + c]` for every block of the row (the f32 outputs
/// come from the shared combine), each block's trits decoded once for every
/// activation row (see [`gemv_avx2::tq1_trits`]; the activations in natural order).
///
/// # Safety
/// The CPU must support AVX2 and F16C; `row` must hold `chunks` 54-byte blocks, `acts`
/// the activation rows and `prep` their chunk sums.
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn row_dots_tq1_avx2(
    row: &[u8],
    acts: &QuantizedActivations,
    prep: &Prepared,
    chunks: usize,
    out: &mut [i32],
) {
    const STRIDE: usize = crate::format::tq1_0::BLOCK_BYTES;
    for c in 0..chunks {
        let p = row.as_ptr().add(c * STRIDE);
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH) as *const i8);
        let trits = gemv_avx2::tq1_trits(p);
        for r in 0..prep.n {
            let a = acts.row(r).as_ptr().add(c * CHUNK);
            *out.get_unchecked_mut(r * chunks + c) = gemv_avx2::hsum(gemv_avx2::tq1_dot(&trits, a))
                - *prep.sums.get_unchecked(r * chunks + c);
        }
    }
}
