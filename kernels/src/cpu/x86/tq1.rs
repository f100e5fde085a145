//! TQ1_0 (five base-3 trits per byte) on AVX-512 VNNI and AVX2.

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::super::{
    Prepared, TQ1_PAIR, TQ1_PAIR_OFFSET, TQ1_PAIR_PIECE, TQ1_PAIR_QH, TQ1_PREPARED,
};
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

/// One trit position of [`gemv4_tq1_avx512`]'s six packed vectors (three per unit,
/// the two units of a pair of columns, which multiply the same activations `a`):
/// `q · 3 mod 256` and both `dpbusd`s of each, in `asm!` so that the chains stay
/// interleaved in program order (LLVM otherwise runs one vector's chains after the
/// other's: 4.85 ns per block hot instead of 4.40–4.48). Each unit has one
/// accumulator per sum, a chain of 15 `dpbusd`s per pair; the two units' chains
/// alternate, which hides their latency.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn dense_step(
    q: [__m512i; 6],
    d1: &mut [__m512i; 2],
    d2: &mut [__m512i; 2],
    a: [__m512i; 3],
) -> [__m512i; 6] {
    let (n0, n1, n2, n3, n4, n5): (__m512i, __m512i, __m512i, __m512i, __m512i, __m512i);
    // SAFETY: register-only byte adds and dpbusds; AVX-512 BW/VNNI are enabled here.
    std::arch::asm!(
        "vpaddb {n0}, {q0}, {q0}",
        "vpaddb {n3}, {q3}, {q3}",
        "vpaddb {n1}, {q1}, {q1}",
        "vpaddb {n4}, {q4}, {q4}",
        "vpaddb {n2}, {q2}, {q2}",
        "vpaddb {n5}, {q5}, {q5}",
        "vpdpbusd {e0}, {q0}, {a0}",
        "vpdpbusd {e1}, {q3}, {a0}",
        "vpdpbusd {e0}, {q1}, {a1}",
        "vpdpbusd {e1}, {q4}, {a1}",
        "vpdpbusd {e0}, {q2}, {a2}",
        "vpdpbusd {e1}, {q5}, {a2}",
        "vpaddb {n0}, {n0}, {q0}",
        "vpaddb {n3}, {n3}, {q3}",
        "vpaddb {n1}, {n1}, {q1}",
        "vpaddb {n4}, {n4}, {q4}",
        "vpaddb {n2}, {n2}, {q2}",
        "vpaddb {n5}, {n5}, {q5}",
        "vpdpbusd {f0}, {n0}, {a0}",
        "vpdpbusd {f1}, {n3}, {a0}",
        "vpdpbusd {f0}, {n1}, {a1}",
        "vpdpbusd {f1}, {n4}, {a1}",
        "vpdpbusd {f0}, {n2}, {a2}",
        "vpdpbusd {f1}, {n5}, {a2}",
        q0 = in(zmm_reg) q[0],
        q1 = in(zmm_reg) q[1],
        q2 = in(zmm_reg) q[2],
        q3 = in(zmm_reg) q[3],
        q4 = in(zmm_reg) q[4],
        q5 = in(zmm_reg) q[5],
        a0 = in(zmm_reg) a[0],
        a1 = in(zmm_reg) a[1],
        a2 = in(zmm_reg) a[2],
        e0 = inout(zmm_reg) d1[0],
        e1 = inout(zmm_reg) d1[1],
        f0 = inout(zmm_reg) d2[0],
        f1 = inout(zmm_reg) d2[1],
        n0 = out(zmm_reg) n0,
        n1 = out(zmm_reg) n1,
        n2 = out(zmm_reg) n2,
        n3 = out(zmm_reg) n3,
        n4 = out(zmm_reg) n4,
        n5 = out(zmm_reg) n5,
        options(nomem, nostack, preserves_flags),
    );
    [n0, n1, n2, n3, n4, n5]
}

/// GEMV for four consecutive TQ1_0 rows (`rows` holds exactly their bytes): per row
/// the same `Σ_c d_c · (dot_c as f32)` in block order as [`gemv_tq1_avx512`], bit for
/// bit (lane `j` adds row `j`'s terms one by one).
///
/// Works on pairs of columns (blocks `c`, `c + 1` of each row), as two units of two
/// rows (A, B and C, D) computed in the same steps. A unit's four blocks hold 192
/// `qs` bytes, packed into three full vectors: 16-byte piece k of each block (a 4×4
/// transpose of pieces), so that every vector holds the same (row, column) per 128-bit
/// lane and they need no shuffles to be summed — where one vector per block would
/// leave 12 lanes empty. The activations they multiply are the same for every row
/// (and both units) and come pre-packed to match ([`Prepared::dense`]), as whole
/// 64-byte loads: the 16-byte broadcasts of an earlier packing ([A B] rows per
/// vector, one column) took 5 % of the kernel. Per unit that is 30 `dpbusd`s and 30
/// `vpaddb`s on 512-bit vectors instead of 40 each.
///
/// Everything else is done per pair ([`weave`], [`finish`]): the
/// 16 `qh` bytes per column (four trits each) go through 256-bit vectors, one int32
/// lane per row and column; the eight per-row, per-column sums come out of one shuffle
/// tree; the offset, shift, conversion and scaling run on 256-bit vectors. On Zen 4 a
/// 128-bit `dpbusd` takes the same multiply-pipe slot as a 256-bit one, and a
/// cross-lane shuffle about 0.8 cycles next to the `dpbusd`s; doing this work per
/// column was what kept the kernel at twice the cycles of its 30 `dpbusd`s. Each
/// pair's reduction runs woven into the next pair's steps.
///
/// Hot, one thread, 512×2560 (`--example hotloop`): 4.56 ns per block for the
/// four-vector kernel, 4.40 packed, 4.28 pipelined, 4.16 with pre-packed activations,
/// 3.86 with the paired reduction, 3.69 with two-by-two units (3.76 at K = 6912), 3.63
/// with the transposed pieces (3.68 at K = 6912), 3.62 with masked loads in place of half
/// the shuffles (3.62), 3.45 with both units in one step (3.46): one accumulator per
/// unit and sum instead of two, so no adds to join them, and each activation vector
/// loaded once per pair. (Two per unit and sum, as before, measured 3.49–3.61; the
/// kernel costs about 0.45 cycles per vector instruction whatever its width — on
/// 256-bit vectors, without the shuffles, it took 4.27.) 3.40 with the prefetches
/// spread over the pair's steps.
///
/// Memory: the four rows are one contiguous stretch, read four places at a time. It
/// is prefetched into L2 as one ascending stream (216 bytes per column) at least one
/// stretch ahead, which the prefetchers keep up with, where one prefetch per row did
/// not (6912×2560 cold, 2 threads: 225 → 183 µs with the same arithmetic); and each
/// row's lines [`TQ1_NEAR_COLUMNS`] columns ahead go into L1 (past a row's end: the
/// same row of the next stretch).
///
/// # Safety
/// As [`gemv_tq1_avx512`], for all four rows; the CPU must also support AVX-512 VL;
/// `rows.len() == 4 * chunks * 54`; `prep.dense` in the layout of
/// [`Prepared::dense`] for `chunks` blocks.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,f16c")]
pub(crate) unsafe fn gemv4_tq1_avx512(rows: &[u8], chunks: usize, prep: &Prepared) -> [f32; 4] {
    let row_bytes = chunks * crate::format::tq1_0::BLOCK_BYTES;
    debug_assert_eq!(rows.len(), 4 * row_bytes);
    debug_assert_eq!(prep.dense.len(), super::super::tq1_dense_len(chunks));
    let mut st = Weave::new();
    if chunks > 0 {
        // L2 stream distance: at least the whole stretch, so that during one call the
        // next four rows are fetched in full (4 KiB alone left rows B to D's first
        // blocks unfetched at K = 6912: 2560×6912 cold, 2 threads, 179 → 170 µs);
        // 12 or 16 KiB measured no better than 8 at 6912×2560.
        let far = (4 * row_bytes).max(2 * PREFETCH);
        let at = Stretch {
            far,
            base: rows.as_ptr(),
            row_bytes,
            chunks,
            dense: prep.dense.as_ptr(),
        };
        // Software-pipelined: pair P's arithmetic runs with pair P − 1's reduction and
        // `qh` dots and pair P − 2's sums woven between its steps, so that their
        // dependent chains overlap independent work. An odd last column pairs with an
        // empty one (zero codes, zero scales, zero activations: it adds +0.0, which
        // leaves every sum as it is, a sum of terms that starts at +0.0 never being
        // -0.0).
        let last = chunks.div_ceil(2) - 1;
        if last == 0 {
            st.pending = pair::<true>(&at, 0, |_| {});
        } else {
            st.pending = pair::<false>(&at, 0, |_| {});
            st.open = Pair::new(0);
            st.pending = if last == 1 {
                pair::<true>(&at, 1, |t| weave::<false>(&mut st, &at, t))
            } else {
                pair::<false>(&at, 1, |t| weave::<false>(&mut st, &at, t))
            };
            for p in 2..last {
                st.advance(p - 1);
                st.pending = pair::<false>(&at, p, |t| weave::<true>(&mut st, &at, t));
            }
            if last >= 2 {
                st.advance(last - 1);
                st.pending = pair::<true>(&at, last, |t| weave::<true>(&mut st, &at, t));
            }
        }
        st.advance(last);
        for t in 0..5 {
            if last == 0 {
                weave::<false>(&mut st, &at, t);
            } else {
                weave::<true>(&mut st, &at, t);
            }
        }
        st.closed = st.open;
        for t in 0..5 {
            finish(&mut st, &at, t);
        }
    }
    let mut out = [0.0f32; 4];
    _mm_storeu_ps(out.as_mut_ptr(), st.acc);
    out
}

/// Four consecutive TQ1_0 rows and the activations, for [`pair()`].
struct Stretch {
    base: *const u8,
    /// L2 prefetch distance in bytes.
    far: usize,
    row_bytes: usize,
    chunks: usize,
    dense: *const i8,
}

/// A pair's accumulators and the bytes its reduction needs, until the next pair's
/// steps reduce them; index 0 the first unit (rows A, B), 1 the second (C, D).
#[derive(Clone, Copy)]
struct Pending {
    /// `dpbusd` accumulators (see [`dense_step`]).
    d1: [__m512i; 2],
    d2: [__m512i; 2],
    /// Per unit: block bytes 48..64 (`qh`, the scale, and the next block's first
    /// bytes) of (row, column) = (first, c), (first, c + 1), (second, c), (second,
    /// c + 1), in 128-bit lanes 0..4.
    tail: [__m512i; 2],
}

impl Pending {
    #[inline(always)]
    unsafe fn empty() -> Self {
        Pending {
            d1: [_mm512_setzero_si512(); 2],
            d2: [_mm512_setzero_si512(); 2],
            tail: [_mm512_setzero_si512(); 2],
        }
    }
}

/// A pair of columns on its way to the sums.
#[derive(Clone, Copy)]
struct Pair {
    /// Which pair: columns `2 · index` and `2 · index + 1`.
    index: usize,
    /// Per unit: `256 ×` the `qs` dots, (row, column) as in [`Pending::tail`], four
    /// partial sums each.
    e: [__m512i; 2],
    /// The block scales: lanes 0..4 rows A..D of the first column, 4..8 of the second.
    scales: __m256,
    /// The `qh` trit dots' two halves (see [`dot_powers`]), lanes as `scales`.
    h1: __m256i,
    h2: __m256i,
}

impl Pair {
    #[inline(always)]
    unsafe fn new(index: usize) -> Self {
        Pair {
            index,
            e: [_mm512_setzero_si512(); 2],
            scales: _mm256_setzero_ps(),
            h1: _mm256_setzero_si256(),
            h2: _mm256_setzero_si256(),
        }
    }
}

/// The reduction's state between pairs.
struct Weave {
    /// The last pair's accumulators, not reduced yet.
    pending: Pending,
    /// The pair being reduced (its `qh` dots too) in the current pair's steps.
    open: Pair,
    /// The pair before it, whose sums the current pair's steps add.
    closed: Pair,
    /// Row `j`'s sum of scaled block dots, in lane `j`.
    acc: __m128,
    /// Partial sums of the pair being finished, between two steps.
    s1: __m512i,
    /// `qh` bytes times `3ᵗ`, between the steps of [`weave`].
    qh: __m256i,
    /// The finished pair's `256 ×` dots plus `qh` dots, between the steps of [`finish`].
    sums: __m256i,
}

impl Weave {
    #[inline(always)]
    unsafe fn new() -> Self {
        Weave {
            pending: Pending::empty(),
            open: Pair::new(0),
            closed: Pair::new(0),
            acc: _mm_setzero_ps(),
            s1: _mm512_setzero_si512(),
            qh: _mm256_setzero_si256(),
            sums: _mm256_setzero_si256(),
        }
    }

    /// Before the steps that reduce pair `index` (then pending): the pair reduced
    /// before it is the one to finish.
    #[inline(always)]
    unsafe fn advance(&mut self, index: usize) {
        self.closed = self.open;
        self.open = Pair::new(index);
    }
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

/// [`pin`] for a 256-bit vector.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn pin256(mut x: __m256i) -> __m256i {
    // SAFETY: as `pin`.
    std::arch::asm!("/* {0} */", inout(ymm_reg) x, options(nomem, nostack, preserves_flags));
    x
}

/// Woven into a pair's step `t`: the pending pair's reduction (per unit `256 ×` the
/// dots, `3 · d1 − d2`, each (row, column)'s partial sums in one 128-bit lane), its
/// `qh` dots — 16 bytes per column, four trits each (their fifth position's
/// activations would be zero), one int32 lane per row and column — and (`FINISH`) the
/// sums of the pair before.
#[inline(always)]
unsafe fn weave<const FINISH: bool>(st: &mut Weave, at: &Stretch, t: usize) {
    let e = |d1: __m512i, d2: __m512i| {
        pin(_mm512_sub_epi32(
            _mm512_add_epi32(d1, _mm512_add_epi32(d1, d1)),
            d2,
        ))
    };
    match t {
        0 => st.open.e[0] = e(st.pending.d1[0], st.pending.d2[0]),
        1 => {
            st.open.e[1] = e(st.pending.d1[1], st.pending.d2[1]);
            // Word indices into both units' tails (lane p: word 8p + w, + 32 for the
            // second): words 0..16 the eight blocks' `qh` (two words each), 16..24 their
            // scales, both in the order of `Pair::scales`.
            let gather = _mm512_set_epi16(
                0, 0, 0, 0, 0, 0, 0, 0, 58, 42, 26, 10, 50, 34, 18, 2, 57, 56, 41, 40, 25, 24, 9,
                8, 49, 48, 33, 32, 17, 16, 1, 0,
            );
            let both = _mm512_permutex2var_epi16(st.pending.tail[0], gather, st.pending.tail[1]);
            st.qh = _mm512_castsi512_si256(both);
            st.open.scales = _mm256_cvtph_ps(_mm512_extracti32x4_epi32::<2>(both));
        }
        _ => {}
    }
    if t >= 1 {
        let p = t - 1;
        let x = _mm256_loadu_si256(
            at.dense
                .add(st.open.index * TQ1_PAIR + TQ1_PAIR_QH + 32 * p) as *const __m256i,
        );
        let next = times3_256(st.qh);
        st.open.h1 = _mm256_dpbusd_epi32(st.open.h1, st.qh, x);
        st.open.h2 = pin256(_mm256_dpbusd_epi32(st.open.h2, next, x));
        st.qh = next;
    }
    if FINISH {
        finish(st, at, t);
    }
}

/// Stage `t` of the closed pair's sums: per row and column the `qs` dot (one shuffle
/// tree for both units) plus the `qh` dot, minus the activation sum (pre-scaled by
/// 256 in [`Prepared::dense`]), shifted, converted, scaled by the block scale and
/// added to `acc` — the first column's terms, then the second's.
#[inline(always)]
unsafe fn finish(st: &mut Weave, at: &Stretch, t: usize) {
    let pair = st.closed;
    match t {
        2 => {
            // Per 128-bit lane: [a0 + a2, a1 + a3, b0 + b2, b1 + b3] of that (row,
            // column) in the units a and b; then each unit's total twice.
            let w = _mm512_add_epi32(
                _mm512_unpacklo_epi64(pair.e[0], pair.e[1]),
                _mm512_unpackhi_epi64(pair.e[0], pair.e[1]),
            );
            st.s1 = pin(_mm512_add_epi32(w, _mm512_shuffle_epi32::<0xB1>(w)));
        }
        3 => {
            // Into the order of `Pair::scales` (rows A..D of column c, then of c + 1):
            // the first unit's totals are dwords 0, 4, 8, 12 — (A, c), (A, c + 1),
            // (B, c), (B, c + 1) — the second's (rows C, D) dwords 2, 6, 10, 14.
            let qs = _mm512_castsi512_si256(_mm512_permutexvar_epi32(
                _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 14, 6, 12, 4, 10, 2, 8, 0),
                st.s1,
            ));
            let h = _mm256_sub_epi32(
                _mm256_add_epi32(pair.h1, _mm256_add_epi32(pair.h1, pair.h1)),
                pair.h2,
            );
            let offset = _mm256_loadu_si256(
                at.dense.add(pair.index * TQ1_PAIR + TQ1_PAIR_OFFSET) as *const __m256i
            );
            st.sums = pin256(_mm256_add_epi32(_mm256_add_epi32(qs, h), offset));
        }
        4 => {
            let dots = _mm256_cvtepi32_ps(_mm256_srai_epi32::<{ TRIT_SHIFT as i32 }>(st.sums));
            let scaled = _mm256_mul_ps(pair.scales, dots);
            st.acc = _mm_add_ps(st.acc, _mm256_castps256_ps128(scaled));
            st.acc = _mm_add_ps(st.acc, _mm256_extractf128_ps::<1>(scaled));
        }
        _ => {}
    }
}

/// [`gemv4_tq1_avx512`]'s L1 prefetch distance, in columns of each row. Measured cold
/// with 2 threads at 6912×2560: 4 to 16 columns within noise of each other; against
/// the single L1 stream [`PREFETCH`] to [`2 * PREFETCH`](PREFETCH) ahead that this
/// and the L2 stream replaced, interleaved over 8 rounds, median 168 → 155 µs.
const TQ1_NEAR_COLUMNS: usize = 8;

/// [`gemv4_tq1_avx512`]'s pair `pair` of columns `c = 2 · pair` and `c + 1`, both
/// units (rows 0, 1 and 2, 3) at once, with `weave(t)` after each trit position `t`.
/// `LAST`: the last pair, whose second column may be past the last one (then it is
/// empty).
#[inline(always)]
unsafe fn pair<const LAST: bool>(
    at: &Stretch,
    pair: usize,
    mut weave: impl FnMut(usize),
) -> Pending {
    const STRIDE: usize = crate::format::tq1_0::BLOCK_BYTES;
    let mut u = Pending::empty();
    let c = 2 * pair;
    // Into L2, one ascending stream through the stretch (a pair's share, two columns
    // of four rows, is 6.75 lines); into L1, the four rows' next lines. Both spread
    // over the pair's five steps rather than issued together at its start: cold,
    // 6912×2560, interleaved over 6 rounds, median 268 → 255 µs with one thread and
    // 166 → 158 with two (hot 3.45 → 3.40 ns per block).
    let far = at.base.wrapping_add(8 * STRIDE * pair + at.far);
    let ahead = c + TQ1_NEAR_COLUMNS;
    let near = if ahead < at.chunks {
        ahead * STRIDE
    } else {
        4 * at.row_bytes + (ahead - at.chunks) * STRIDE
    };
    let (q0, t0) = load_unit::<LAST>(at, c, 0);
    let (q1, t1) = load_unit::<LAST>(at, c, 1);
    u.tail = [t0, t1];
    let mut q = [q0[0], q0[1], q0[2], q1[0], q1[1], q1[2]];
    let packed = at.dense.add(pair * TQ1_PAIR);
    for t in 0..5 {
        let a = |k: usize| {
            _mm512_loadu_si512(packed.add(TQ1_PAIR_PIECE * k + 64 * t) as *const __m512i)
        };
        // Lines 0..7 of the L2 stream: t and t + 5; row t's two lines into L1.
        _mm_prefetch::<_MM_HINT_T1>(far.wrapping_add(64 * t) as *const i8);
        if t < 2 {
            _mm_prefetch::<_MM_HINT_T1>(far.wrapping_add(64 * (t + 5)) as *const i8);
        }
        if t < 4 {
            let p = at.base.wrapping_add(t * at.row_bytes + near);
            _mm_prefetch::<_MM_HINT_T0>(p as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64) as *const i8);
        }
        q = dense_step(q, &mut u.d1, &mut u.d2, [a(0), a(1), a(2)]);
        weave(t);
    }
    u
}

/// The packed `qs` vectors and the tail of the unit of rows `2 · second` and the next,
/// columns `c` and `c + 1` (see [`pair()`]).
#[inline(always)]
unsafe fn load_unit<const LAST: bool>(
    at: &Stretch,
    c: usize,
    second: usize,
) -> ([__m512i; 3], __m512i) {
    const STRIDE: usize = crate::format::tq1_0::BLOCK_BYTES;
    // Whole 64-byte loads: bytes past a block are the next block's or row's (the same
    // stretch), except after the last row's last block, which is masked off.
    let first = at.base.add(2 * second * at.row_bytes + c * STRIDE);
    // A 4×4 transpose of 16-byte pieces: vector k = piece k of [X X' Y Y'] (X, Y the
    // rows, ' the second column), so every vector has the same (row, column) per
    // 128-bit lane; piece 3 holds qh and the scale.
    let (x01, y01, x23, y23) = if LAST {
        // The second column may be past the last one (then it is empty), and the last
        // row's last block is loaded masked.
        let load = |row: usize, col: usize| {
            let p = first.add(row * at.row_bytes + col * STRIDE);
            if c + col >= at.chunks {
                _mm512_setzero_si512()
            } else if second == 1 && row == 1 && c + col + 1 == at.chunks {
                _mm512_maskz_loadu_epi8((1u64 << STRIDE) - 1, p as *const i8)
            } else {
                _mm512_loadu_si512(p as *const __m512i)
            }
        };
        let (x0, x1, y0, y1) = (load(0, 0), load(0, 1), load(1, 0), load(1, 1));
        let lo = |a, b| _mm512_shuffle_i64x2::<0x44>(a, b);
        let hi = |a, b| _mm512_shuffle_i64x2::<0xEE>(a, b);
        (lo(x0, x1), lo(y0, y1), hi(x0, x1), hi(y0, y1))
    } else {
        // [P0 P1 P0' P1'] and [P2 P3 P2' P3'] of one row: a load, then the second
        // column's 32 bytes (54 further on) into the upper half by a masked load, where
        // a shuffle would compete with the dpbusds. The reads reach 10 bytes into block
        // c + 2, which exists outside the last pair.
        const UPPER: u64 = !0u64 << 32;
        let pieces = |row: usize| {
            let p = first.add(row * at.row_bytes) as *const i8;
            (
                _mm512_mask_loadu_epi8(_mm512_loadu_si512(p as *const __m512i), UPPER, p.add(22)),
                _mm512_mask_loadu_epi8(
                    _mm512_loadu_si512(p.add(32) as *const __m512i),
                    UPPER,
                    p.add(54),
                ),
            )
        };
        let ((x01, x23), (y01, y23)) = (pieces(0), pieces(1));
        (x01, y01, x23, y23)
    };
    let q = [
        _mm512_shuffle_i64x2::<0x88>(x01, y01),
        _mm512_shuffle_i64x2::<0xDD>(x01, y01),
        _mm512_shuffle_i64x2::<0x88>(x23, y23),
    ];
    (q, _mm512_shuffle_i64x2::<0xDD>(x23, y23))
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
