//! The AVX-512 GEMM microkernel (TQ2_0, I2_S and TQ1_0): `W` (1 or 2) weight rows ×
//! `R` (1..=8) activation rows per call, with all `2 × 8` int32 accumulators held in
//! registers across the chunks of the rows.
//!
//! Each activation load feeds both weight rows' `dpbusd`s, and each decoded code
//! register feeds all `R` activation rows. The sixteen accumulators are reduced
//! together by one transpose-reduce ([`reduce16`], about 2.8 ops per output instead
//! of 9), so lane `8w + r` of one vector holds the dot of weight row `w` with
//! activation row `r`:
//! - TQ2_0 (one f16 scale per 256-weight block) reduces once per chunk and combines
//!   in f32 lane-wise: `acc += d_c · (dot_c as f32)` in chunk order, the same two
//!   roundings per chunk as the shared scalar combine, sixteen outputs per instruction.
//! - I2_S (one scale per tensor) only needs the row's integer total, so its
//!   accumulators run over the whole row and are reduced once.
//! - TQ1_0 goes like TQ2_0 with five trit vectors per block.

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::super::{Prepared, TQ1_PREPARED};
use super::{PREFETCH, decode512, tq1::trits};
use crate::format::{tq1_0, tq2_0};
use crate::quant::CHUNK;

/// Lane `i` of the result is the sum of the sixteen int32 lanes of `v[i]`: four
/// levels of unpack/shuffle + add, 45 ops for sixteen sums.
#[inline(always)]
unsafe fn reduce16(v: &[__m512i; 16]) -> __m512i {
    // Per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3] for the pair (a, b).
    let mut t = [_mm512_setzero_si512(); 8];
    for (i, t) in t.iter_mut().enumerate() {
        let (a, b) = (v[2 * i], v[2 * i + 1]);
        *t = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
    }
    // Per 128-bit lane: element j is a partial sum of v[4i + j].
    let mut u = [_mm512_setzero_si512(); 4];
    for (i, u) in u.iter_mut().enumerate() {
        let (x, y) = (t[2 * i], t[2 * i + 1]);
        *u = _mm512_add_epi32(_mm512_unpacklo_epi64(x, y), _mm512_unpackhi_epi64(x, y));
    }
    fold_lanes(fold_lanes(u[0], u[1]), fold_lanes(u[2], u[3]))
}

/// Adds 128-bit lanes pairwise: `[x0+x1, x2+x3, y0+y1, y2+y3]` (0x88 takes lanes 0
/// and 2 of each source, 0xDD lanes 1 and 3).
#[inline(always)]
unsafe fn fold_lanes(x: __m512i, y: __m512i) -> __m512i {
    _mm512_add_epi32(
        _mm512_shuffle_i32x4::<0x88>(x, y),
        _mm512_shuffle_i32x4::<0xDD>(x, y),
    )
}

/// Adds chunk `c` of `W` rows times activation rows `r0..r0 + R` into `acc[8w + r]`.
#[inline(always)]
unsafe fn chunk<const REVERSED: bool, const W: usize, const R: usize>(
    rows: [*const u8; 2],
    stride: usize,
    c: usize,
    prep: &Prepared,
    r0: usize,
    acc: &mut [__m512i; 16],
) {
    let mut codes = [[_mm512_setzero_si512(); 4]; W];
    for (w, code) in codes.iter_mut().enumerate() {
        let p = rows[w].add(c * stride);
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH) as *const i8);
        *code = decode512(p, REVERSED);
    }
    let a = prep.values.as_ptr().add(r0 * prep.stride + c * CHUNK);
    for r in 0..R {
        for g in 0..4 {
            let x = _mm512_loadu_si512(a.add(r * prep.stride + 64 * g) as *const __m512i);
            for (w, code) in codes.iter().enumerate() {
                acc[8 * w + r] = _mm512_dpbusd_epi32(acc[8 * w + r], code[g], x);
            }
        }
    }
}

/// TQ2_0: lane `8w + r` = `Σ_c d_c · (dot_c as f32)` in chunk order for weight row
/// `w` and activation row `r0 + r` (the caller applies the activation scale).
///
/// # Safety
/// AVX-512 F/BW/VNNI and F16C; `rows[..W]` each hold `full` 66-byte blocks; `prep`
/// is in the 2-bit layout with activation rows `r0..r0 + R`, `r0` a multiple of 8.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,f16c")]
unsafe fn tq2<const W: usize, const R: usize>(
    rows: [*const u8; 2],
    full: usize,
    prep: &Prepared,
    r0: usize,
) -> [f32; 16] {
    const STRIDE: usize = tq2_0::BLOCK_BYTES;
    let mut total = _mm512_setzero_ps();
    for c in 0..full {
        let mut acc = [_mm512_setzero_si512(); 16];
        chunk::<false, W, R>(rows, STRIDE, c, prep, r0, &mut acc);
        total = add_scaled_chunk::<W>(total, &acc, rows, STRIDE, 64, c, prep, r0);
    }
    let mut out = [0.0f32; 16];
    _mm512_storeu_ps(out.as_mut_ptr(), total);
    out
}

/// `total + d_c · (dot_c as f32)` lane-wise for chunk `c`: lane `8w + r` takes the dot
/// of weight row `w` with activation row `r0 + r` (from `acc`, less the activation
/// sums) times row `w`'s f16 block scale at byte `scale_at` of its block — the shared
/// scalar combine's two roundings per chunk, sixteen outputs at once.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn add_scaled_chunk<const W: usize>(
    total: __m512,
    acc: &[__m512i; 16],
    rows: [*const u8; 2],
    stride: usize,
    scale_at: usize,
    c: usize,
    prep: &Prepared,
    r0: usize,
) -> __m512 {
    // Lanes 0..8 take row 0's block scale, lanes 8..16 row 1's.
    let spread = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    let sums = _mm512_broadcast_i64x4(_mm256_loadu_si256(
        prep.sums_by_chunk.as_ptr().add(c * prep.n_pad + r0) as *const __m256i,
    ));
    let dots = _mm512_sub_epi32(reduce16(acc), sums);
    let scale = |w: usize| {
        rows[w]
            .add(c * stride + scale_at)
            .cast::<i16>()
            .read_unaligned()
    };
    let d1 = if W == 2 { scale(1) } else { 0 };
    let d = _mm_cvtph_ps(_mm_set_epi16(0, 0, 0, 0, 0, 0, d1, scale(0)));
    let d = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(d));
    _mm512_add_ps(total, _mm512_mul_ps(d, _mm512_cvtepi32_ps(dots)))
}

/// I2_S: lane `8w + r` = `Σ c·a` over the row's `full` chunks with unsigned codes
/// (the caller subtracts the activation sums).
///
/// # Safety
/// As [`tq2`], with rows of `full` 64-byte I2_S chunks.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,f16c")]
unsafe fn i2s<const W: usize, const R: usize>(
    rows: [*const u8; 2],
    full: usize,
    prep: &Prepared,
    r0: usize,
) -> [i32; 16] {
    let mut acc = [_mm512_setzero_si512(); 16];
    for c in 0..full {
        chunk::<true, W, R>(rows, 64, c, prep, r0, &mut acc);
    }
    let mut out = [0i32; 16];
    _mm512_storeu_si512(out.as_mut_ptr() as *mut __m512i, reduce16(&acc));
    out
}

/// TQ1_0: as [`tq2`] over 54-byte blocks, five trit vectors each (the prepared
/// activations in the TQ1_0 layout).
///
/// # Safety
/// As [`tq2`], with rows of `full` TQ1_0 blocks and `prep` in the TQ1_0 layout.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,f16c")]
unsafe fn tq1<const W: usize, const R: usize>(
    rows: [*const u8; 2],
    full: usize,
    prep: &Prepared,
    r0: usize,
) -> [f32; 16] {
    const STRIDE: usize = tq1_0::BLOCK_BYTES;
    let mut total = _mm512_setzero_ps();
    for c in 0..full {
        let mut codes = [[_mm512_setzero_si512(); 5]; W];
        for (w, code) in codes.iter_mut().enumerate() {
            let p = rows[w].add(c * STRIDE);
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH) as *const i8);
            *code = trits(p);
        }
        let mut acc = [_mm512_setzero_si512(); 16];
        let a = prep
            .values
            .as_ptr()
            .add(r0 * prep.stride + c * TQ1_PREPARED);
        for r in 0..R {
            for t in 0..5 {
                let x = _mm512_loadu_si512(a.add(r * prep.stride + 64 * t) as *const __m512i);
                for (w, code) in codes.iter().enumerate() {
                    acc[8 * w + r] = _mm512_dpbusd_epi32(acc[8 * w + r], code[t], x);
                }
            }
        }
        total = add_scaled_chunk::<W>(total, &acc, rows, STRIDE, 52, c, prep, r0);
    }
    let mut out = [0.0f32; 16];
    _mm512_storeu_ps(out.as_mut_ptr(), total);
    out
}

/// Monomorphises `$f::<W, R>` for the runtime block shape (`w` in 1..=2, `r` in 1..=8).
macro_rules! by_shape {
    ($f:ident, $w:expr, $r:expr, $($arg:expr),*) => {
        match ($w, $r) {
            (1, 1) => $f::<1, 1>($($arg),*),
            (1, 2) => $f::<1, 2>($($arg),*),
            (1, 3) => $f::<1, 3>($($arg),*),
            (1, 4) => $f::<1, 4>($($arg),*),
            (1, 5) => $f::<1, 5>($($arg),*),
            (1, 6) => $f::<1, 6>($($arg),*),
            (1, 7) => $f::<1, 7>($($arg),*),
            (1, _) => $f::<1, 8>($($arg),*),
            (_, 1) => $f::<2, 1>($($arg),*),
            (_, 2) => $f::<2, 2>($($arg),*),
            (_, 3) => $f::<2, 3>($($arg),*),
            (_, 4) => $f::<2, 4>($($arg),*),
            (_, 5) => $f::<2, 5>($($arg),*),
            (_, 6) => $f::<2, 6>($($arg),*),
            (_, 7) => $f::<2, 7>($($arg),*),
            (_, _) => $f::<2, 8>($($arg),*),
        }
    };
}

/// Defines a `block_*` entry point: one kernel for `w` weight rows (1..=2) × `r` activation rows
/// (1..=8), the shape picked at run time.
macro_rules! block_fn {
    ($name:ident, $kernel:ident, $out:ty) => {
        #[doc = concat!("[`", stringify!($kernel), "`] for `w` weight rows (1..=2) × `r` activation rows (1..=8).")]
        ///
        /// # Safety
        #[doc = concat!("As [`", stringify!($kernel), "`].")]
        pub(crate) unsafe fn $name(
            w: usize,
            r: usize,
            rows: [*const u8; 2],
            full: usize,
            prep: &Prepared,
            r0: usize,
        ) -> [$out; 16] {
            by_shape!($kernel, w, r, rows, full, prep, r0)
        }
    };
}

block_fn!(block_tq2, tq2, f32);
block_fn!(block_i2s, i2s, i32);
block_fn!(block_tq1, tq1, f32);
