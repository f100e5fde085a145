//! Every supported kernel path equals the scalar oracle bit for bit — on the int32
//! chunk dots and on the f32 outputs — over random shapes, scales and codes, ragged
//! I2_S tails and multi-threaded splits included.

use gauntlet_kernels::quant::QuantizedActivations;
use gauntlet_kernels::{
    CpuKernels, FormatError, KernelError, KernelPath, TernaryFormat, TernaryMatrix,
};
use proptest::prelude::*;

/// Tensor bytes for `m × k` in `format` from codes and scales. TQ formats get a scale
/// per block, cycling through `scales` block after block, so neighbouring blocks of a
/// row differ and a kernel that pairs a block's dot with the wrong block's scale (or
/// adds them in another order) fails; I2_S has one tensor scale, `scales[0]`.
fn build(format: TernaryFormat, m: usize, k: usize, codes: &[i8], scales: &[f32]) -> Vec<u8> {
    let mut bytes = Vec::new();
    let per_block = format != TernaryFormat::I2S;
    let step = if per_block { format.block_weights() } else { k };
    for (b, block) in codes[..m * k].chunks(step).enumerate() {
        let scale = if per_block {
            scales[b % scales.len()]
        } else {
            scales[0]
        };
        format
            .encode_codes(block, scale, &mut bytes)
            .expect("encode");
    }
    if format == TernaryFormat::I2S {
        bytes.extend_from_slice(&gauntlet_kernels::format::i2_s::scale_trailer(scales[0]));
    }
    bytes
}

/// One random GEMM problem.
#[derive(Debug, Clone)]
struct Case {
    format: TernaryFormat,
    m: usize,
    k: usize,
    n: usize,
    codes: Vec<i8>,
    acts: Vec<i8>,
    scales: Vec<f32>,
    inv: Vec<f32>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(TernaryFormat::ALL.to_vec()),
        1usize..12,
        1usize..7,
        // GEMV (n = 1, its own kernels) often; past 8 so the GEMM microkernel's full
        // 8-row blocks and their remainders run.
        prop_oneof![Just(1usize), 2usize..20],
    )
        .prop_flat_map(|(format, m, blocks, n)| {
            let k = blocks * format.block_weights();
            (
                prop::collection::vec(-1i8..=1, m * k),
                prop::collection::vec(any::<i8>(), n * k),
                prop::collection::vec(1e-3f32..4.0, 2..6),
                prop::collection::vec(1e-4f32..1.0, n),
            )
                .prop_map(move |(codes, acts, scales, inv)| Case {
                    format,
                    m,
                    k,
                    n,
                    codes,
                    acts,
                    scales,
                    inv,
                })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn every_path_equals_scalar_bit_exactly(c in case(), threads in 1usize..4) {
        let Case { format, m, k, n, codes, acts, scales, inv } = c;
        let bytes = build(format, m, k, &codes, &scales);
        let w = TernaryMatrix::new(format, m, k, &bytes).expect("matrix");
        let x = QuantizedActivations::from_parts(acts, inv, n, k).expect("acts");
        let oracle = CpuKernels::new(KernelPath::Scalar, 1).expect("scalar");
        let mut want = vec![0.0f32; m * n];
        oracle.gemm(&w, &x, &mut want).expect("scalar gemm");
        for path in KernelPath::supported() {
            let kernels = CpuKernels::new(path, threads).expect("kernels");
            for row in 0..m {
                prop_assert_eq!(kernels.row_chunk_dots(&w, row, &x).expect("dots"), oracle.row_chunk_dots(&w, row, &x).expect("dots"), "{} {} row {}", path, format, row);
            }
            let mut got = vec![f32::NAN; m * n];
            kernels.gemm(&w, &x, &mut got).expect("gemm");
            let got_bits: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
            let want_bits: Vec<u32> = want.iter().map(|v| v.to_bits()).collect();
            prop_assert_eq!(got_bits, want_bits, "{} {} m={} k={} n={} threads={}", path, format, m, k, n, threads);
        }
    }
}

#[test]
fn scalar_oracle_agrees_with_dequantized_float_math() {
    let (m, k, n) = (7, 512, 3);
    let w_f32: Vec<f32> = (0..m * k)
        .map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.1)
        .collect();
    let x_f32: Vec<f32> = (0..n * k)
        .map(|i| ((i * 13 % 17) as f32 - 8.0) * 0.25)
        .collect();
    let x = QuantizedActivations::quantize(&x_f32, n, k).expect("acts");
    for format in TernaryFormat::ALL {
        let bytes = format.quantize(&w_f32).expect("quantize");
        let deq = format.dequantize(&bytes, m * k).expect("dequantize");
        let w = TernaryMatrix::new(format, m, k, &bytes).expect("matrix");
        let mut y = vec![0.0f32; m * n];
        CpuKernels::new(KernelPath::Scalar, 1)
            .expect("scalar")
            .gemm(&w, &x, &mut y)
            .expect("gemm");
        for r in 0..n {
            for i in 0..m {
                let exact: f64 = (0..k)
                    .map(|j| {
                        f64::from(deq[i * k + j])
                            * f64::from(x.row(r)[j])
                            * f64::from(x.inv_scale(r))
                    })
                    .sum();
                let got = f64::from(y[r * m + i]);
                assert!(
                    (got - exact).abs() <= 1e-3 * exact.abs().max(1.0),
                    "{format} r={r} i={i}: {got} vs {exact}"
                );
            }
        }
    }
}

#[test]
fn k_not_a_block_multiple_is_an_error_at_construction() {
    let cases = [
        (TernaryFormat::Tq2_0, 300, 256),
        (TernaryFormat::Tq1_0, 128, 256),
        (TernaryFormat::I2S, 200, 128),
    ];
    for (format, k, block) in cases {
        let err = TernaryMatrix::new(format, 4, k, &[0u8; 4096]).expect_err("ragged K");
        assert!(
            matches!(err, FormatError::NotBlockMultiple { len, block: b, .. } if len == k && b == block),
            "{format}: {err}"
        );
        assert!(err.to_string().contains("row length K"), "{err}");
    }
    let short = TernaryMatrix::new(TernaryFormat::Tq2_0, 2, 256, &[0u8; 131]).expect_err("short");
    assert!(
        matches!(short, FormatError::ByteLength { expected: 132, .. }),
        "{short}"
    );
}

#[test]
fn kernel_path_override_parsing() {
    let cases: [(&str, bool); 5] = [
        ("scalar", true),
        ("AVX2", true),
        (" avx512 ", true),
        ("neon", false),
        ("", false),
    ];
    for (value, known) in cases {
        match KernelPath::parse(value) {
            Ok(path) => assert!(known && path.is_supported(), "{value:?} parsed to {path}"),
            Err(KernelError::BadOverride { .. }) => {
                assert!(!known, "{value:?} rejected as unknown")
            }
            Err(KernelError::Unsupported { available, .. }) => {
                assert!(known && available.contains("scalar"), "{value:?}")
            }
            Err(other) => panic!("{value:?}: unexpected {other}"),
        }
    }
    assert!(matches!(
        CpuKernels::new(KernelPath::Scalar, 0),
        Err(KernelError::ZeroThreads)
    ));
}

#[test]
fn gemm_rejects_mismatched_buffers() {
    let bytes = TernaryFormat::Tq2_0
        .quantize(&[0.5; 512])
        .expect("quantize");
    let w = TernaryMatrix::new(TernaryFormat::Tq2_0, 2, 256, &bytes).expect("matrix");
    let x = QuantizedActivations::quantize(&[1.0; 128], 1, 128).expect("acts");
    let kernels = CpuKernels::new(KernelPath::detect(), 2).expect("kernels");
    let mut out = vec![0.0; 2];
    assert!(matches!(
        kernels.gemm(&w, &x, &mut out),
        Err(KernelError::Format(FormatError::ShapeMismatch { .. }))
    ));
}

/// Every supported path's `gemm` (with `threads` threads, `repeats` times) equals the
/// scalar oracle's bit for bit on one problem.
#[allow(clippy::too_many_arguments)]
fn assert_every_path_equals_scalar(
    format: TernaryFormat,
    (m, k, n): (usize, usize, usize),
    codes: &[i8],
    scales: &[f32],
    acts: Vec<i8>,
    inv: Vec<f32>,
    threads: usize,
    repeats: usize,
) {
    let bytes = build(format, m, k, codes, scales);
    let w = TernaryMatrix::new(format, m, k, &bytes).expect("matrix");
    let x = QuantizedActivations::from_parts(acts, inv, n, k).expect("acts");
    let context = format!("{format} m={m} k={k} n={n}");
    every_path_equals_scalar_on(&w, &w, &x, threads, repeats, &context);
}

/// The scalar oracle's `gemm` on `oracle`, then every supported path's (`threads`
/// threads, `repeats` times) on `w`, which holds the same bytes, maybe elsewhere: equal
/// bit for bit. Returns the oracle's.
fn every_path_equals_scalar_on(
    oracle: &TernaryMatrix<'_>,
    w: &TernaryMatrix<'_>,
    x: &QuantizedActivations,
    threads: usize,
    repeats: usize,
    context: &str,
) -> Vec<f32> {
    let len = w.m() * x.n();
    let mut want = vec![0.0f32; len];
    CpuKernels::new(KernelPath::Scalar, 1)
        .expect("scalar")
        .gemm(oracle, x, &mut want)
        .expect("scalar gemm");
    let want_bits: Vec<u32> = want.iter().map(|v| v.to_bits()).collect();
    for path in KernelPath::supported() {
        let kernels = CpuKernels::new(path, threads).expect("kernels");
        for _ in 0..repeats {
            let mut got = vec![f32::NAN; len];
            kernels.gemm(w, x, &mut got).expect("gemm");
            let got_bits: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
            assert_eq!(got_bits, want_bits, "{path} {context}");
        }
    }
    want
}

/// Enough rows for many thread pieces (the proptest's small matrices fit in one), so
/// several threads share the work and each piece's outputs land in the right place.
#[test]
fn many_pieces_across_threads_equal_scalar() {
    let (m, k) = (300, 512);
    for format in TernaryFormat::ALL {
        for n in [1, 9] {
            let codes: Vec<i8> = (0..m * k)
                .map(|i| ((i * 7 + i / 5) % 3) as i8 - 1)
                .collect();
            let acts: Vec<i8> = (0..n * k).map(|i| (i * 31 % 251) as i8).collect();
            let inv: Vec<f32> = (0..n).map(|r| 0.01 + r as f32 * 0.003).collect();
            let scales = [0.02, 0.05, 0.3];
            assert_every_path_equals_scalar(format, (m, k, n), &codes, &scales, acts, inv, 3, 20);
        }
    }
}

/// Block dots near their largest (every weight +1 against activations of 127, minus a
/// few) times scales with full f16 mantissas: the products need more than f32's 24
/// bits, so every combine rounding shows. A kernel that fused `d · dot` into the sum
/// (an FMA) or added a block's term in another order passes the random cases above
/// (their small dots make most products exact) but fails here.
#[test]
fn inexact_block_products_round_as_the_scalar_combine() {
    let (m, k) = (9, 2048);
    for format in TernaryFormat::ALL {
        for n in [1, 3] {
            let codes: Vec<i8> = (0..m * k)
                .map(|i| if i % 97 == 0 { 0 } else { 1 })
                .collect();
            let scales = [1.0009766, 0.3330078, 1.9990234, 0.7060547, 1.4140625];
            let acts: Vec<i8> = (0..n * k).map(|i| 127 - (i % 5) as i8).collect();
            let inv = vec![0.0123; n];
            assert_every_path_equals_scalar(format, (m, k, n), &codes, &scales, acts, inv, 2, 1);
        }
    }
}

/// Block terms whose sum depends on the order they are added in: per row, chunk 0
/// adds `2048 · 32512` (all +1 against activations of 127), chunk 1 a small
/// non-integer, chunk 2 subtracts the first term, chunk 3 another small one, and so on
/// again. In chunk order the small term after a large one is rounded away (the f32
/// step there is 4); added in any other order it survives. So a kernel that combines
/// the chunks of a tile, or of the last chunks, in another order fails here, where
/// the random cases' small dots add exactly whatever the order.
#[test]
fn block_terms_add_in_chunk_order_per_row() {
    for format in [TernaryFormat::Tq2_0, TernaryFormat::Tq1_0] {
        let block = format.block_weights();
        for blocks in 4..=9 {
            let (m, k) = (9, blocks * block);
            let codes: Vec<i8> = (0..m * k)
                .map(|i| match (i % k / block) % 4 {
                    0 => 1,
                    2 => -1,
                    // Three +1 per small block, at positions that differ per row.
                    _ => i8::from((i % block) % 85 == (i / k) % 85),
                })
                .collect();
            // `build` cycles the scales over the blocks, so block c of every row gets
            // scales[c].
            let scales: Vec<f32> = (0..blocks)
                .map(|c| if c % 2 == 0 { 2048.0 } else { 1.0 / 128.0 })
                .collect();
            for n in [1, 3] {
                let acts = vec![127i8; n * k];
                let inv = vec![0.5; n];
                for threads in [1, 2] {
                    assert_every_path_equals_scalar(
                        format,
                        (m, k, n),
                        &codes,
                        &scales,
                        acts.clone(),
                        inv.clone(),
                        threads,
                        1,
                    );
                }
            }
        }
    }
}

/// A copy of some bytes that ends exactly where an inaccessible page begins, so a
/// read past the end faults (the test process dies) instead of reading whatever the
/// allocator left there.
struct GuardedCopy {
    map: *mut libc::c_void,
    map_len: usize,
    offset: usize,
    len: usize,
}

impl GuardedCopy {
    fn new(bytes: &[u8]) -> Self {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).expect("page");
        let data_pages = bytes.len().div_ceil(page).max(1);
        let map_len = (data_pages + 1) * page;
        // SAFETY: a fresh private anonymous mapping; its last page is made inaccessible
        // and the bytes are copied to end right before it.
        unsafe {
            let map = libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(map, libc::MAP_FAILED, "mmap");
            let guard = map.cast::<u8>().add(data_pages * page);
            assert_eq!(
                libc::mprotect(guard.cast(), page, libc::PROT_NONE),
                0,
                "mprotect"
            );
            let offset = data_pages * page - bytes.len();
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                map.cast::<u8>().add(offset),
                bytes.len(),
            );
            Self {
                map,
                map_len,
                offset,
                len: bytes.len(),
            }
        }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `offset..offset + len` was written in `new` and stays mapped until drop.
        unsafe { std::slice::from_raw_parts(self.map.cast::<u8>().add(self.offset), self.len) }
    }
}

impl Drop for GuardedCopy {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.map, self.map_len) };
    }
}

/// No path reads past the tensor: the last block of the last row ends right before an
/// inaccessible page (a model file's mapping can end there too), so a whole-vector
/// load that runs over the end — as the kernels do inside the tensor — crashes the test.
#[test]
fn kernels_never_read_past_the_tensor() {
    for format in TernaryFormat::ALL {
        for (m, k) in [
            (1, 256),
            (4, 256),
            (4, 512),
            (5, 512),
            (8, 768),
            (8, 1024),
            (9, 1280),
        ] {
            let codes: Vec<i8> = (0..m * k)
                .map(|i| ((i * 5 + i / 7) % 3) as i8 - 1)
                .collect();
            let bytes = build(format, m, k, &codes, &[0.75, 1.25, 0.5]);
            let guarded = GuardedCopy::new(&bytes);
            let w = TernaryMatrix::new(format, m, k, guarded.bytes()).expect("matrix");
            let plain = TernaryMatrix::new(format, m, k, &bytes).expect("matrix");
            for n in [1, 3, 8, 9] {
                let acts: Vec<i8> = (0..n * k).map(|i| (i * 29 % 253) as i8).collect();
                let x = QuantizedActivations::from_parts(acts, vec![0.01; n], n, k).expect("acts");
                every_path_equals_scalar_on(
                    &plain,
                    &w,
                    &x,
                    2,
                    1,
                    &format!("{format} m={m} k={k} n={n}"),
                );
            }
        }
    }
}

/// I2_S bytes can hold the code 3 (decoded as +2), which no encoder writes. At the
/// largest K, every weight 3 against activations of 127 drives the kernels' unsigned
/// per-lane sums as far as they go (the true dot, `2 · 127 · K`, still fits int32): a
/// kernel whose accumulators wrap before their shift back to the code scale differs
/// from the oracle. Five rows, so the four-row GEMV and the one-row GEMV both run, and
/// two activation rows for the GEMM.
#[test]
fn i2s_code_three_at_the_largest_k_equals_scalar() {
    let (m, k) = (5, gauntlet_kernels::matrix::MAX_K);
    let mut bytes = vec![0xFFu8; m * k / 4];
    bytes.extend_from_slice(&gauntlet_kernels::format::i2_s::scale_trailer(0.5));
    let w = TernaryMatrix::new(TernaryFormat::I2S, m, k, &bytes).expect("matrix");
    for n in [1, 2] {
        let x = QuantizedActivations::from_parts(vec![127; n * k], vec![1.0; n], n, k)
            .expect("activations");
        let want = every_path_equals_scalar_on(&w, &w, &x, 2, 1, &format!("n={n}"));
        assert_eq!(want[0], 0.5 * (2 * 127 * k) as f32, "the oracle's own sum");
    }
}
