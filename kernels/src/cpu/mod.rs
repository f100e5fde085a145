//! CPU GEMV/GEMM: ternary weights × int8 activations → f32, on a scalar reference path,
//! AVX2 or AVX-512 VNNI (every format on each), with weight rows split across a
//! persistent thread pool.
//!
//! The output is defined by the scalar oracle: int32 dots per 256-weight chunk, then
//! `combine_row` — `Σ_c d_c · (dot_c as f32)` left to right in chunk order, times the
//! activation scale (TQ formats), or `(Σ_c dot_c) as f32 · scale · inv_scale` (I2_S).
//! The AVX2 path feeds its chunk dots to that same function. The AVX-512 GEMV
//! (`x86::gemv`, `x86::tq1`) and register-blocked GEMM (`block` + `x86::gemm`) form
//! the floats in registers with exactly those operations in that order (an int32
//! total being order-free), so every path equals the oracle bit for bit; the
//! proptests in `tests/cpu_paths.rs` hold them to it.
//!
//! Work is split in pieces of rows, each thread taking its own contiguous run before
//! stealing from the others' (see `pool::Pieces`), and GEMM
//! decodes each weight chunk once for all `n` activation rows.

mod block;
mod path;
mod pool;
mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{FormatError, KernelError};
use crate::format::{TernaryFormat, tq2_0};
use crate::matrix::TernaryMatrix;
use crate::quant::{CHUNK, QuantizedActivations};

pub use path::KernelPath;
use pool::{Pieces, ThreadPool};

/// Largest activation batch (`n`) one call accepts.
pub const MAX_N: usize = 64;

/// Activations permuted for the SIMD paths (see `x86/mod.rs`), with per-chunk sums.
pub(crate) struct Prepared {
    pub(crate) n: usize,
    /// Bytes between activation rows in `values`.
    pub(crate) stride: usize,
    pub(crate) values: Vec<i8>,
    pub(crate) sums: Vec<i32>,
    /// `n` rounded up to a multiple of 8: the GEMM microkernel loads eight sums at once.
    pub(crate) n_pad: usize,
    /// Chunk-major activation sums: `[c * n_pad + r]`, zero in the padding.
    pub(crate) sums_by_chunk: Vec<i32>,
    /// Per activation row, the sum over its full 256-weight chunks (the I2_S tail's
    /// half chunk excluded: the tail is computed separately, like the oracle does).
    pub(crate) full_sums: Vec<i32>,
    /// TQ1_0 GEMV on AVX-512 only: per block, the activations as the four-row
    /// kernel's packed vectors read them ([`TQ1_PAIR`] bytes per two blocks); else empty.
    pub(crate) dense: Vec<i8>,
}

impl Prepared {
    /// The activations as `path`'s kernels read them, for a matrix of `m` rows.
    fn new(acts: &QuantizedActivations, format: TernaryFormat, path: KernelPath, m: usize) -> Self {
        if format == TernaryFormat::Tq1_0 {
            return Self::new_tq1(acts, path, m);
        }
        let (n, k) = (acts.n(), acts.k());
        let mut values = vec![0i8; n * k];
        let mut sums = Vec::with_capacity(n * k.div_ceil(CHUNK));
        for r in 0..n {
            let src = acts.row(r);
            let dst = &mut values[r * k..(r + 1) * k];
            let full = k / CHUNK;
            for c in 0..full {
                for g in 0..4 {
                    for h in 0..2 {
                        let from = c * CHUNK + 128 * h + 32 * g;
                        let to = c * CHUNK + 64 * g + 32 * h;
                        dst[to..to + 32].copy_from_slice(&src[from..from + 32]);
                    }
                }
            }
            // A shorter tail keeps natural order; only the scalar tail code reads it.
            dst[full * CHUNK..].copy_from_slice(&src[full * CHUNK..]);
            sums.extend_from_slice(acts.chunk_sums(r));
        }
        Self::with_sums(acts, k, values, sums)
    }

    /// Adds the scales and the chunk-major sums the GEMM microkernel reads.
    fn with_sums(
        acts: &QuantizedActivations,
        stride: usize,
        values: Vec<i8>,
        sums: Vec<i32>,
    ) -> Self {
        let (n, k) = (acts.n(), acts.k());
        let (chunks, full) = (k.div_ceil(CHUNK), k / CHUNK);
        let n_pad = n.div_ceil(8) * 8;
        let mut sums_by_chunk = vec![0i32; chunks * n_pad];
        for r in 0..n {
            for c in 0..chunks {
                sums_by_chunk[c * n_pad + r] = sums[r * chunks + c];
            }
        }
        let full_sums = (0..n)
            .map(|r| {
                sums[r * chunks..r * chunks + full]
                    .iter()
                    .fold(0i32, |t, &v| t.wrapping_add(v))
            })
            .collect();
        Self {
            n,
            stride,
            values,
            sums,
            n_pad,
            sums_by_chunk,
            full_sums,
            dense: Vec::new(),
        }
    }

    /// TQ1_0's layouts, for the AVX-512 kernels only (the AVX2 ones read the
    /// activations in natural order and the scalar oracle reads them itself; both use
    /// only the sums).
    ///
    /// `values`, for the one-row kernels (GEMM, chunk dots, and a GEMV's last rows when
    /// `m` is not a multiple of 4): per 256-weight block, five 64-byte vectors, one per
    /// trit position `t`, holding the activation of the weight whose trit `t` sits in
    /// that byte lane (lanes 0..32: qs[0..32], 32..48: qs[32..48], 48..52: qh) and zero
    /// in lanes that hold no weight.
    ///
    /// [`Prepared::dense`], for the four-row GEMV (`n = 1`): per pair of blocks `c`,
    /// `c + 1` ([`TQ1_PAIR`] bytes; a last odd block pairs with a zero one), what the
    /// kernel's packed vectors multiply, as whole 64-byte loads. For each 16-byte piece
    /// k of the qs bytes (lanes 0..16, 16..32, 32..48), five 64-byte vectors, one per
    /// trit position: the two blocks' activations of that piece, twice (c, c + 1, c,
    /// c + 1: the vector holds that piece of two rows' two blocks); at
    /// [`TQ1_PAIR_QH`] the four qh positions' four activations, four times (once per
    /// row) per block; at [`TQ1_PAIR_OFFSET`] each block's `−256 ·` activation sum four
    /// times (the kernel adds them before its shift by 8). 576 bytes per block,
    /// re-read for every four rows, so it has to stay in L1 (measured at K = 6912: the
    /// same cold time as a 416-byte form; a 768-byte one, before, cost 10 %).
    fn new_tq1(acts: &QuantizedActivations, path: KernelPath, m: usize) -> Self {
        let (n, k) = (acts.n(), acts.k());
        let chunks = k / CHUNK;
        let stride = chunks * TQ1_PREPARED;
        let mut sums = Vec::with_capacity(n * chunks);
        for r in 0..n {
            sums.extend_from_slice(acts.chunk_sums(r));
        }
        if path != KernelPath::Avx512 {
            return Self::with_sums(acts, stride, Vec::new(), sums);
        }
        let mut values = Vec::new();
        if n > 1 || !m.is_multiple_of(4) {
            values = vec![0i8; n * stride];
            for r in 0..n {
                let src = acts.row(r);
                for c in 0..chunks {
                    let dst = &mut values[r * stride + c * TQ1_PREPARED..][..TQ1_PREPARED];
                    let block = &src[c * CHUNK..][..CHUNK];
                    // Contiguous runs per trit position (the per-lane form took most of
                    // a small GEMV's time).
                    for t in 0..5 {
                        let lanes = &mut dst[64 * t..][..64];
                        lanes[..32].copy_from_slice(&block[32 * t..][..32]);
                        lanes[32..48].copy_from_slice(&block[160 + 16 * t..][..16]);
                        if t < 4 {
                            lanes[48..52].copy_from_slice(&block[240 + 4 * t..][..4]);
                        }
                    }
                }
            }
        }
        let mut dense = Vec::new();
        if n == 1 {
            dense = vec![0i8; tq1_dense_len(chunks)];
            let src = acts.row(0);
            for (c, (block, &sum)) in src.chunks_exact(CHUNK).zip(acts.chunk_sums(0)).enumerate() {
                let (pair, second) = (c / 2, c % 2);
                let dst = &mut dense[pair * TQ1_PAIR..][..TQ1_PAIR];
                for t in 0..5 {
                    let pieces = [32 * t, 32 * t + 16, 160 + 16 * t];
                    for (k, from) in pieces.into_iter().enumerate() {
                        for copy in [0, 32] {
                            dst[TQ1_PAIR_PIECE * k + 64 * t + copy + 16 * second..][..16]
                                .copy_from_slice(&block[from..][..16]);
                        }
                    }
                }
                for t in 0..4 {
                    for row in 0..4 {
                        dst[TQ1_PAIR_QH + 32 * t + 16 * second + 4 * row..][..4]
                            .copy_from_slice(&block[240 + 4 * t..][..4]);
                    }
                }
                let offset = (-256 * sum).to_le_bytes().map(|b| b as i8);
                for row in 0..4 {
                    dst[TQ1_PAIR_OFFSET + 16 * second + 4 * row..][..4].copy_from_slice(&offset);
                }
            }
        }
        Self {
            dense,
            ..Self::with_sums(acts, stride, values, sums)
        }
    }
}

/// Prepared bytes per TQ1_0 block: five trit positions × 64 lanes.
pub(crate) const TQ1_PREPARED: usize = 5 * 64;

/// [`Prepared::dense`] bytes per pair of TQ1_0 blocks: three pieces' five 64-byte
/// vectors, four 32-byte qh vectors, the 32-byte offsets, in whole cache lines.
pub(crate) const TQ1_PAIR: usize = 1152;

/// Bytes of one qs piece's five trit-position vectors in a [`TQ1_PAIR`] block (piece k
/// starts at `k ·` this).
pub(crate) const TQ1_PAIR_PIECE: usize = 5 * 64;

/// Where the qh activation vectors start in a [`TQ1_PAIR`] block.
pub(crate) const TQ1_PAIR_QH: usize = 3 * TQ1_PAIR_PIECE;

/// Where the activation-sum offsets start in a [`TQ1_PAIR`] block.
pub(crate) const TQ1_PAIR_OFFSET: usize = TQ1_PAIR_QH + 4 * 32;
const _: () = assert!(TQ1_PAIR_OFFSET + 32 <= TQ1_PAIR && TQ1_PAIR.is_multiple_of(64));

/// [`Prepared::dense`]'s length for `chunks` blocks.
pub(crate) fn tq1_dense_len(chunks: usize) -> usize {
    chunks.div_ceil(2) * TQ1_PAIR
}

/// Turns one weight row's int32 chunk dots into f32 outputs, identically for every path:
/// per-block scales are applied chunk by chunk in order, then the activation scale.
fn combine_row(
    w: &TernaryMatrix<'_>,
    row: usize,
    acts: &QuantizedActivations,
    dots: &[i32],
    out: &mut [f32],
) {
    let chunks = acts.k().div_ceil(CHUNK);
    let bytes = w.row(row);
    match w.format() {
        TernaryFormat::I2S => {
            for (r, o) in out.iter_mut().enumerate() {
                let total: i32 = dots[r * chunks..(r + 1) * chunks].iter().sum();
                *o = total as f32 * w.tensor_scale() * acts.inv_scale(r);
            }
        }
        format => {
            let stride = format.block_bytes();
            let d_at = stride - 2;
            // Chunk-outer, so each block scale is converted once for all activation
            // rows; each row still adds its terms in chunk order.
            let mut acc = [0.0f32; MAX_N];
            let acc = &mut acc[..out.len()];
            for c in 0..chunks {
                let d = f16_to_f32(u16::from_le_bytes([
                    bytes[c * stride + d_at],
                    bytes[c * stride + d_at + 1],
                ]));
                for (r, a) in acc.iter_mut().enumerate() {
                    *a += d * dots[r * chunks + c] as f32;
                }
            }
            for (r, (o, a)) in out.iter_mut().zip(acc.iter()).enumerate() {
                *o = a * acts.inv_scale(r);
            }
        }
    }
}

/// IEEE half → f32, equal to `half::f16::to_f32` for every input (NaNs quieted, as the
/// F16C instruction does). `half` re-checks CPU features on every call, which cost more
/// than the whole dot at 69 k blocks per GEMV.
#[inline]
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from(h >> 10) & 0x1f;
    let man = u32::from(h & 0x3ff);
    match exp {
        // Subnormal or zero: man · 2⁻²⁴ is exact in f32.
        0 => {
            let v = man as f32 * (1.0 / 16_777_216.0);
            if sign != 0 { -v } else { v }
        }
        31 if man == 0 => f32::from_bits(sign | 0x7f80_0000),
        31 => f32::from_bits(sign | 0x7fc0_0000 | (man << 13)),
        _ => f32::from_bits(sign | ((exp + 112) << 23) | (man << 13)),
    }
}

/// One weight row's int32 chunk dots on `path` (`out[r * chunks + c]`): the AVX2 and
/// scalar GEMV/GEMM, and `row_chunk_dots` on every path.
fn row_dots(
    path: KernelPath,
    w: &TernaryMatrix<'_>,
    row: usize,
    acts: &QuantizedActivations,
    prep: &Prepared,
    out: &mut [i32],
) {
    let bytes = w.row(row);
    let k = acts.k();
    let chunks = k.div_ceil(CHUNK);
    let full = k / CHUNK;
    #[cfg(target_arch = "x86_64")]
    {
        if w.format() == TernaryFormat::Tq1_0 && path == KernelPath::Avx512 {
            // SAFETY: the path is supported (checked by `CpuKernels::new`), the row holds
            // `chunks` 54-byte blocks and `prep` was built for TQ1_0.
            unsafe { x86::tq1::row_dots_tq1_avx512(bytes, prep, chunks, out) };
            return;
        }
        if w.format() == TernaryFormat::Tq1_0 && path == KernelPath::Avx2 {
            // SAFETY: as above, for AVX2.
            unsafe { x86::tq1::row_dots_tq1_avx2(bytes, acts, prep, chunks, out) };
            return;
        }
        let layout = match w.format() {
            TernaryFormat::Tq2_0 => Some(x86::Layout {
                chunk_stride: tq2_0::BLOCK_BYTES,
                reversed: false,
            }),
            TernaryFormat::I2S => Some(x86::Layout {
                chunk_stride: 64,
                reversed: true,
            }),
            TernaryFormat::Tq1_0 => None,
        };
        if let Some(layout) = layout
            && path != KernelPath::Scalar
        {
            // SAFETY: `CpuKernels::new` only accepts paths this CPU supports, and the
            // row holds `full` chunks at `chunk_stride` (checked by `TernaryMatrix::new`).
            unsafe {
                match path {
                    KernelPath::Avx512 => {
                        x86::two_bit::row_dots_avx512(bytes, full, layout, prep, chunks, out)
                    }
                    _ => x86::two_bit::row_dots_avx2(bytes, full, layout, prep, chunks, out),
                }
            }
            if full < chunks {
                // I2_S rows of an odd number of 128-blocks: the last half-chunk in scalar.
                tail_dots(bytes, full, acts, out, chunks);
            }
            return;
        }
    }
    let _ = (prep, full);
    scalar::row_dots(w.format(), bytes, acts, out);
}

/// The 128-weight I2_S tail chunk, computed like the scalar oracle.
fn tail_dots(row: &[u8], full: usize, acts: &QuantizedActivations, out: &mut [i32], chunks: usize) {
    for r in 0..acts.n() {
        out[r * chunks + full] = tail_dot(row, full, acts.row(r));
    }
}

/// The signed dot of an I2_S row's 128-weight tail (after `full` chunks) with the
/// matching activations (0 when the row has no tail).
fn tail_dot(row: &[u8], full: usize, acts: &[i8]) -> i32 {
    let block = crate::format::i2_s::blocks(&row[full * 64..])
        .into_iter()
        .flatten()
        .next();
    block.map_or(0, |block| {
        let a = &acts[full * CHUNK..];
        (0..128)
            .map(|j| i32::from(block.code(j)) * i32::from(a[j]))
            .sum()
    })
}

/// How many threads' worth of work ran between two [`CpuKernels::pieces_taken`]
/// snapshots: all pieces over the busiest thread's (2.0 when two threads took equal
/// shares, 1.0 when one took them all); 1.0 when no piece ran.
pub fn parallelism(before: &[u64], after: &[u64]) -> f64 {
    let done: Vec<u64> = after
        .iter()
        .zip(before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    let busiest = done.iter().copied().max().unwrap_or(0);
    if busiest == 0 {
        return 1.0;
    }
    done.iter().sum::<u64>() as f64 / busiest as f64
}

/// The CPU kernels on one path with a fixed number of threads.
pub struct CpuKernels {
    path: KernelPath,
    pool: ThreadPool,
    /// Per thread id (0 the caller): GEMM pieces taken, over the kernels' lifetime.
    taken: Box<[AtomicU64]>,
}

impl fmt::Debug for CpuKernels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CpuKernels")
            .field("path", &self.path)
            .field("threads", &self.pool.threads())
            .finish()
    }
}

/// A raw output pointer shared by workers that write disjoint row ranges.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: workers write disjoint ranges and the pool joins them before the buffer is used.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// A method (not a field access) so closures capture the whole `Sync` wrapper.
    ///
    /// # Safety
    /// `offset` must be inside the output buffer.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: guaranteed by the caller.
        unsafe { self.0.add(offset) }
    }
}

impl CpuKernels {
    /// Kernels on `path` (which this CPU must support) using `threads` threads.
    pub fn new(path: KernelPath, threads: usize) -> Result<Self, KernelError> {
        if threads == 0 {
            return Err(KernelError::ZeroThreads);
        }
        let path = path.require()?;
        Ok(Self {
            path,
            pool: ThreadPool::new(threads).map_err(|e| KernelError::Spawn(e.to_string()))?,
            taken: (0..threads).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// Kernels on the path `GAUNTLET_KERNEL` names (default: fastest) with `threads` threads.
    pub fn from_env(threads: usize) -> Result<Self, KernelError> {
        Self::new(KernelPath::from_env()?, threads)
    }

    /// The path in use.
    pub fn path(&self) -> KernelPath {
        self.path
    }

    /// Threads in use (the caller's included).
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// Pieces of rows each thread has taken in GEMM/GEMV calls so far, by thread (index
    /// 0 the calling thread). Two snapshots show how evenly the threads shared the calls
    /// in between ([`parallelism`]): a thread the OS or the hypervisor left without a
    /// core leaves its pieces to the others, and the counts say so.
    pub fn pieces_taken(&self) -> Vec<u64> {
        self.taken
            .iter()
            .map(|t| t.load(Ordering::Relaxed))
            .collect()
    }

    /// `y = x · Wᵀ`: `out` is `n × m` (row `r` = weights applied to activation row `r`).
    pub fn gemm(
        &self,
        w: &TernaryMatrix<'_>,
        x: &QuantizedActivations,
        out: &mut [f32],
    ) -> Result<(), KernelError> {
        let (m, n) = (w.m(), x.n());
        if x.k() != w.k() {
            return Err(FormatError::ShapeMismatch {
                what: "activation row length (K)",
                expected: w.k(),
                actual: x.k(),
            }
            .into());
        }
        if n == 0 || n > MAX_N {
            return Err(FormatError::ShapeMismatch {
                what: "activation rows (n, 1..=64)",
                expected: MAX_N,
                actual: n,
            }
            .into());
        }
        if out.len() != m * n {
            return Err(FormatError::ShapeMismatch {
                what: "output (n × m)",
                expected: m * n,
                actual: out.len(),
            }
            .into());
        }
        let prep = Prepared::new(x, w.format(), self.path, m);
        let chunks = x.k().div_ceil(CHUNK);
        let threads = self.pool.threads();
        // Rows in pieces of a multiple of 16 (so threads never share an output cache
        // line for n = 1 and the GEMM microkernel's row pairs stay whole), about eight
        // per thread, each thread taking its own contiguous run first (one memory
        // stream per thread) and then what others left (`Pieces`): a thread the OS
        // delays leaves its pieces to the others instead of holding up the call.
        let piece = m.div_ceil(threads * 8).div_ceil(16).max(1) * 16;
        let pieces = Pieces::new(m.div_ceil(piece), threads);
        let path = self.path;
        // AVX-512: GEMV one row at a time in registers, GEMM through the
        // register-blocked microkernel, both writing straight into `out`.
        let blocked = cfg!(target_arch = "x86_64") && path == KernelPath::Avx512;
        // AVX2: GEMV one row at a time in registers, and for the 2-bit formats GEMM
        // through the four-row microkernel, also straight into `out`.
        let avx2 = cfg!(target_arch = "x86_64") && path == KernelPath::Avx2;
        let gemv_avx2 = avx2 && n == 1;
        let gemm_avx2 = avx2 && n > 1 && w.format() != TernaryFormat::Tq1_0;
        // The one-row kernels write each weight row's n outputs contiguously.
        let staged = n > 1 && !blocked && !gemm_avx2;
        let mut transposed = if staged {
            vec![0.0f32; m * n]
        } else {
            Vec::new()
        };
        let target = OutPtr(if staged {
            transposed.as_mut_ptr()
        } else {
            out.as_mut_ptr()
        });
        let job = |id: usize| {
            let mut dots = Vec::new();
            // Counted here and added once: the threads' counters share a cache line.
            let mut took = 0;
            while let Some(at) = pieces.next(id) {
                took += 1;
                // Each piece's rows (and their outputs) go to exactly one thread.
                let rows = at * piece..((at + 1) * piece).min(m);
                if gemv_avx2 {
                    block::gemv_rows_avx2(w, rows, x, &prep, target);
                    continue;
                }
                if gemm_avx2 {
                    block::gemm_rows_avx2(w, rows, x, &prep, target);
                    continue;
                }
                if blocked {
                    if n == 1 {
                        block::gemv_rows_avx512(w, rows, x, &prep, target);
                    } else {
                        block::rows_avx512(w, rows, x, &prep, target);
                    }
                    continue;
                }
                dots.resize(n * chunks, 0);
                for i in rows {
                    // SAFETY: row i's n outputs belong to this piece alone.
                    let dst = unsafe { std::slice::from_raw_parts_mut(target.at(i * n), n) };
                    row_dots(path, w, i, x, &prep, &mut dots);
                    combine_row(w, i, x, &dots, dst);
                }
            }
            if let Some(taken) = self.taken.get(id) {
                taken.fetch_add(took, Ordering::Relaxed);
            }
        };
        self.pool.run(&job);
        if staged {
            for (i, row) in transposed.chunks_exact(n).enumerate() {
                for (r, v) in row.iter().enumerate() {
                    out[r * m + i] = *v;
                }
            }
        }
        Ok(())
    }

    /// `y = W · x` for one activation row.
    pub fn gemv(
        &self,
        w: &TernaryMatrix<'_>,
        x: &QuantizedActivations,
        out: &mut [f32],
    ) -> Result<(), KernelError> {
        self.gemm(w, x, out)
    }

    /// Reads `bytes` once, split across the same threads as the kernels, and returns
    /// their sum (so the read cannot be optimised away): the streaming-read baseline
    /// that roofline figures divide by.
    pub fn stream_read(&self, bytes: &[u8]) -> u64 {
        let threads = self.pool.threads();
        // Pieces as the kernels take them: about eight per thread, 64-byte aligned,
        // a contiguous run per thread first (`Pieces`).
        let piece = bytes.len().div_ceil(threads * 8).div_ceil(64).max(1) * 64;
        let pieces = Pieces::new(bytes.len().div_ceil(piece), threads);
        let total = AtomicU64::new(0);
        let path = self.path;
        let job = |id: usize| {
            let mut sum = 0u64;
            while let Some(at) = pieces.next(id) {
                let part = &bytes[at * piece..((at + 1) * piece).min(bytes.len())];
                sum = sum.wrapping_add(read_sum(path, part));
            }
            total.fetch_add(sum, Ordering::Relaxed);
        };
        self.pool.run(&job);
        total.into_inner()
    }

    /// The int32 per-chunk dots of weight row `row` with every activation row
    /// (`[r * chunks + c]`): what the bit-exactness tests compare across paths.
    pub fn row_chunk_dots(
        &self,
        w: &TernaryMatrix<'_>,
        row: usize,
        x: &QuantizedActivations,
    ) -> Result<Vec<i32>, KernelError> {
        if x.k() != w.k() || row >= w.m() {
            return Err(FormatError::ShapeMismatch {
                what: "activation K / row index",
                expected: w.k(),
                actual: x.k(),
            }
            .into());
        }
        // One row: the one-row layouts.
        let prep = Prepared::new(x, w.format(), self.path, 1);
        let mut dots = vec![0i32; x.n() * x.k().div_ceil(CHUNK)];
        row_dots(self.path, w, row, x, &prep, &mut dots);
        Ok(dots)
    }
}

fn read_sum(path: KernelPath, bytes: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `CpuKernels::new` only accepts paths this CPU supports.
        match path {
            KernelPath::Avx512 => return unsafe { x86::read_sum_avx512(bytes) },
            KernelPath::Avx2 => return unsafe { x86::read_sum_avx2(bytes) },
            KernelPath::Scalar => {}
        }
    }
    let _ = path;
    let (words, tail) = bytes.as_chunks::<8>();
    words
        .iter()
        .fold(0u64, |s, w| s.wrapping_add(u64::from_le_bytes(*w)))
        .wrapping_add(tail.iter().map(|&b| u64::from(b)).sum::<u64>())
}

#[cfg(test)]
mod tests {
    use super::{CpuKernels, KernelPath, f16_to_f32, parallelism};
    use crate::format::TernaryFormat;
    use crate::matrix::TernaryMatrix;
    use crate::roofline::synthetic;

    #[test]
    fn parallelism_is_all_pieces_over_the_busiest_threads() {
        assert_eq!(parallelism(&[3, 5], &[11, 13]), 2.0);
        assert_eq!(parallelism(&[0, 0], &[16, 0]), 1.0);
        assert_eq!(parallelism(&[0, 0], &[12, 4]), 16.0 / 12.0);
        assert_eq!(parallelism(&[0, 0, 0], &[5, 5, 5]), 3.0);
        assert_eq!(parallelism(&[7, 7], &[7, 7]), 1.0, "no pieces ran");
    }

    #[test]
    fn every_gemm_piece_is_counted_once_by_the_thread_that_took_it() {
        // 256 rows in pieces of 16 (about eight per thread): 16 pieces per call.
        let (bytes, x) = synthetic(TernaryFormat::Tq2_0, 256, 512, 1).expect("data");
        let w = TernaryMatrix::new(TernaryFormat::Tq2_0, 256, 512, &bytes).expect("matrix");
        let mut out = vec![0.0f32; 256];
        for threads in [1, 2, 3] {
            let kernels = CpuKernels::new(KernelPath::detect(), threads).expect("kernels");
            let before = kernels.pieces_taken();
            assert_eq!(before, vec![0; threads]);
            for _ in 0..20 {
                kernels.gemm(&w, &x, &mut out).expect("gemm");
            }
            let after = kernels.pieces_taken();
            let pieces_per_call =
                256usize.div_ceil(256usize.div_ceil(threads * 8).div_ceil(16) * 16);
            assert_eq!(
                after.iter().sum::<u64>(),
                20 * pieces_per_call as u64,
                "{threads} threads: {after:?}"
            );
            let p = parallelism(&before, &after);
            assert!(
                (1.0..=threads as f64).contains(&p),
                "{threads} threads: {p}"
            );
            if threads == 1 {
                assert_eq!(p, 1.0);
            }
        }
    }

    #[test]
    fn fast_f16_conversion_equals_half_for_every_input() {
        for bits in 0..=u16::MAX {
            let want = half::f16::from_bits(bits).to_f32();
            let got = f16_to_f32(bits);
            assert_eq!(got.to_bits(), want.to_bits(), "f16 bits {bits:#06x}");
        }
    }
}
