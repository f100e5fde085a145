//! SIMD drivers. AVX-512, every format: GEMM (`n ≥ 2`): weight rows in pairs ×
//! activation rows in blocks of up to eight through the register-blocked microkernel
//! (`x86::gemm`), results written straight into the `n × m` output. GEMV: four rows
//! per call of `x86::tq1` (TQ1_0) or `x86::gemv` (TQ2_0, I2_S), their four sums in
//! one register; any last rows one per call, the sum in a register.
//! On the AVX2 path the GEMV takes one row per call of `x86::gemv_avx2`,
//! and the 2-bit GEMM one weight row against four activation rows per call (TQ1_0's
//! takes the chunk dots and the shared combine).
//!
//! The kernels return, per (weight row, activation row), a TQ format's chunk-order
//! scaled sum before the activation scale, or I2_S's unsigned integer total; the last
//! step here is the shared combine's last step, so outputs equal the scalar path bit
//! for bit.

use std::ops::Range;

use super::{OutPtr, Prepared};
use crate::format::TernaryFormat;
use crate::matrix::TernaryMatrix;
use crate::quant::{CHUNK, QuantizedActivations};

/// Activation rows per microkernel call.
const BLOCK_N: usize = 8;

/// An I2_S output from a kernel's unsigned-code total `s` over weight row `row`'s
/// whole chunks against activation row `r`: less the activation sums, plus the
/// half-chunk tail (in scalar, as the oracle computes it), times the tensor and
/// activation scales.
fn i2s_output(
    w: &TernaryMatrix<'_>,
    row: usize,
    s: i32,
    acts: &QuantizedActivations,
    prep: &Prepared,
    r: usize,
) -> f32 {
    let k = acts.k();
    let (full, chunks) = (k / CHUNK, k.div_ceil(CHUNK));
    let mut total = s.wrapping_sub(prep.full_sums[r]);
    if full < chunks {
        total = total.wrapping_add(super::tail_dot(w.row(row), full, acts.row(r)));
    }
    total as f32 * w.tensor_scale() * acts.inv_scale(r)
}

/// GEMV (`n = 1`): weight rows `rows` of `w` (any format) into `out[i]`, on the
/// AVX-512 path only.
pub(super) fn gemv_rows_avx512(
    w: &TernaryMatrix<'_>,
    rows: Range<usize>,
    acts: &QuantizedActivations,
    prep: &Prepared,
    out: OutPtr,
) {
    #[cfg(target_arch = "x86_64")]
    {
        use super::x86::gemv;
        let k = acts.k();
        let (full, chunks) = (k / CHUNK, k.div_ceil(CHUNK));
        let inv = acts.inv_scale(0);
        let mut rows = rows;
        if w.format() == TernaryFormat::Tq1_0 {
            // `Prepared` builds each layout only where a call can use it (pieces hold a
            // multiple of 16 rows, so one-row TQ1_0 calls happen only when 4 ∤ m).
            let whole = rows.len() / 4 * 4;
            assert!(
                (whole == 0 || prep.dense.len() == super::tq1_dense_len(chunks))
                    && (whole == rows.len() || prep.values.len() == chunks * super::TQ1_PREPARED),
                "TQ1_0 GEMV: the prepared activations lack a layout this piece needs"
            );
        }
        // Four consecutive rows per call share the activation loads (the TQ formats also
        // the reduction and the scaling) and are prefetched as one stream (see
        // `x86::tq1::gemv4_tq1_avx512`, `gemv::tq2x4`, `gemv::i2s4`); the last rows go
        // one by one below.
        while rows.len() >= 4 {
            let i = rows.start;
            let four = w.rows(i..i + 4);
            let row_bytes = w.row(i).len();
            // SAFETY (all three): AVX-512 path; each of the four rows holds `chunks`
            // blocks of its format (TQ2_0 and I2_S: `full` whole 256-chunks, then I2_S's
            // half-chunk tail, if any, which `i2s_output` adds); for TQ1_0 `prep` holds
            // the packed activations (checked above).
            let y: [f32; 4] = match w.format() {
                TernaryFormat::Tq1_0 => {
                    unsafe { super::x86::tq1::gemv4_tq1_avx512(four, chunks, prep) }
                        .map(|y| y * inv)
                }
                TernaryFormat::Tq2_0 => {
                    unsafe { gemv::tq2x4(four, row_bytes, full, prep) }.map(|y| y * inv)
                }
                TernaryFormat::I2S => {
                    let s = unsafe { gemv::i2s4(four, row_bytes, full, prep) };
                    std::array::from_fn(|j| i2s_output(w, i + j, s[j], acts, prep, 0))
                }
            };
            for (j, y) in y.into_iter().enumerate() {
                // SAFETY: outputs i..i + 4 belong to this caller alone.
                unsafe { *out.at(i + j) = y };
            }
            rows.start += 4;
        }
        for i in rows {
            let row = w.row(i);
            let y = match w.format() {
                // SAFETY: AVX-512 path; the row holds `chunks` blocks, `prep` is in the
                // TQ1_0 layout (checked above).
                TernaryFormat::Tq1_0 => {
                    (unsafe { super::x86::tq1::gemv_tq1_avx512(row, chunks, prep) }) * inv
                }
                // SAFETY: AVX-512 path; the row holds `full` blocks (TQ2_0 has no tail).
                TernaryFormat::Tq2_0 => (unsafe { gemv::tq2(row, full, prep) }) * inv,
                _ => {
                    // SAFETY: as above, over the row's `full` whole 256-chunks.
                    let s = unsafe { gemv::i2s(row, full, prep) };
                    i2s_output(w, i, s, acts, prep, 0)
                }
            };
            // SAFETY: output i belongs to this caller alone.
            unsafe { *out.at(i) = y };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (w, rows, acts, prep, out);
        unreachable!("the AVX-512 GEMV is only taken on the AVX-512 path");
    }
}

/// GEMV (`n = 1`): weight rows `rows` of `w` (any format) into `out[i]`, on the AVX2
/// path, one row per call of `x86::gemv_avx2`.
pub(super) fn gemv_rows_avx2(
    w: &TernaryMatrix<'_>,
    rows: Range<usize>,
    acts: &QuantizedActivations,
    prep: &Prepared,
    out: OutPtr,
) {
    #[cfg(target_arch = "x86_64")]
    {
        use super::x86::gemv_avx2;
        let k = acts.k();
        let (full, chunks) = (k / CHUNK, k.div_ceil(CHUNK));
        let inv = acts.inv_scale(0);
        for i in rows {
            let row = w.row(i);
            // SAFETY (all three): AVX2 + F16C path (checked by `CpuKernels::new`); the
            // row holds `chunks` blocks of its format (`full` whole 256-chunks, then
            // I2_S's half-chunk tail if any); `prep` is in the format's layout.
            let y = match w.format() {
                TernaryFormat::Tq1_0 => {
                    (unsafe { gemv_avx2::tq1(row, chunks, acts.row(0), prep) }) * inv
                }
                TernaryFormat::Tq2_0 => (unsafe { gemv_avx2::tq2(row, full, prep) }) * inv,
                TernaryFormat::I2S => i2s_output(
                    w,
                    i,
                    unsafe { gemv_avx2::i2s(row, full, prep) },
                    acts,
                    prep,
                    0,
                ),
            };
            // SAFETY: output i belongs to this caller alone.
            unsafe { *out.at(i) = y };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (w, rows, acts, prep, out);
        unreachable!("the AVX2 GEMV is only taken on the AVX2 path");
    }
}

/// GEMM (`n ≥ 2`) for the 2-bit formats on the AVX2 path: each weight row of `rows`
/// against the activation rows four at a time (`x86::gemv_avx2::{tq2,i2s}_rows`),
/// into `out[r * m + i]`.
pub(super) fn gemm_rows_avx2(
    w: &TernaryMatrix<'_>,
    rows: Range<usize>,
    acts: &QuantizedActivations,
    prep: &Prepared,
    out: OutPtr,
) {
    #[cfg(target_arch = "x86_64")]
    {
        use super::x86::gemv_avx2::{i2s_rows, tq2_rows};
        let (m, n, full) = (w.m(), acts.n(), acts.k() / CHUNK);
        for i in rows {
            let row = w.row(i);
            for r0 in (0..n).step_by(4) {
                let block = (n - r0).min(4);
                // SAFETY (both): AVX2 + F16C path (checked by `CpuKernels::new`); the
                // row holds `full` whole chunks (then I2_S's half-chunk tail if any);
                // `prep` is in the 2-bit layout with activation rows r0..r0 + block.
                if w.format() == TernaryFormat::Tq2_0 {
                    let s = unsafe {
                        match block {
                            1 => tq2_rows::<1>(row, full, prep, r0),
                            2 => tq2_rows::<2>(row, full, prep, r0),
                            3 => tq2_rows::<3>(row, full, prep, r0),
                            _ => tq2_rows::<4>(row, full, prep, r0),
                        }
                    };
                    for (r, s) in s.into_iter().enumerate().take(block) {
                        // SAFETY: column i of output row r0 + r is this caller's.
                        unsafe { *out.at((r0 + r) * m + i) = s * acts.inv_scale(r0 + r) };
                    }
                } else {
                    let s = unsafe {
                        match block {
                            1 => i2s_rows::<1>(row, full, prep, r0),
                            2 => i2s_rows::<2>(row, full, prep, r0),
                            3 => i2s_rows::<3>(row, full, prep, r0),
                            _ => i2s_rows::<4>(row, full, prep, r0),
                        }
                    };
                    for (r, s) in s.into_iter().enumerate().take(block) {
                        let y = i2s_output(w, i, s, acts, prep, r0 + r);
                        // SAFETY: column i of output row r0 + r is this caller's.
                        unsafe { *out.at((r0 + r) * m + i) = y };
                    }
                }
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (w, rows, acts, prep, out);
        unreachable!("the AVX2 GEMM is only taken on the AVX2 path");
    }
}

/// Weight rows `rows` of `w` times every activation row into `out[r * m + i]`.
///
/// Only called on the AVX-512 path (checked by `CpuKernels::new`);
/// `out` must hold `n × m` floats whose columns `rows` belong to the caller alone.
pub(super) fn rows_avx512(
    w: &TernaryMatrix<'_>,
    rows: Range<usize>,
    acts: &QuantizedActivations,
    prep: &Prepared,
    out: OutPtr,
) {
    #[cfg(target_arch = "x86_64")]
    {
        use super::x86::gemm;
        let (m, n, full) = (w.m(), acts.n(), acts.k() / CHUNK);
        let mut i = rows.start;
        while i < rows.end {
            let pair = (rows.end - i).min(2);
            let ptrs = [w.row(i).as_ptr(), w.row(i + pair - 1).as_ptr()];
            for r0 in (0..n).step_by(BLOCK_N) {
                let block = (n - r0).min(BLOCK_N);
                let put = |dw: usize, r: usize, y: f32| {
                    // SAFETY: column i + dw of output row r0 + r is this caller's.
                    unsafe { *out.at((r0 + r) * m + i + dw) = y };
                };
                match w.format() {
                    TernaryFormat::Tq2_0 | TernaryFormat::Tq1_0 => {
                        // SAFETY: AVX-512 path; both row pointers hold `full` blocks
                        // (TQ rows have no tail); `r0` is a multiple of 8; `prep` is
                        // in the format's layout.
                        let y = unsafe {
                            if w.format() == TernaryFormat::Tq1_0 {
                                gemm::block_tq1(pair, block, ptrs, full, prep, r0)
                            } else {
                                gemm::block_tq2(pair, block, ptrs, full, prep, r0)
                            }
                        };
                        for dw in 0..pair {
                            for r in 0..block {
                                put(dw, r, y[BLOCK_N * dw + r] * acts.inv_scale(r0 + r));
                            }
                        }
                    }
                    _ => {
                        // SAFETY: as above, over the rows' `full` whole 256-chunks.
                        let s = unsafe { gemm::block_i2s(pair, block, ptrs, full, prep, r0) };
                        for dw in 0..pair {
                            for r in 0..block {
                                let s = s[BLOCK_N * dw + r];
                                put(dw, r, i2s_output(w, i + dw, s, acts, prep, r0 + r));
                            }
                        }
                    }
                }
            }
            i += pair;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (w, rows, acts, prep, out);
        unreachable!("the blocked GEMM is only taken on the AVX-512 path");
    }
}
