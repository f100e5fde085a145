//! The bit-exactness cases every GPU kernel runner shares: the CUDA source on a real
//! GPU (`gpu.rs`) and compiled for the CPU (`gpu_source_on_cpu.rs`).

use gauntlet_kernels::quant::QuantizedActivations;
use gauntlet_kernels::{CpuKernels, KernelPath, TernaryFormat, TernaryMatrix};

/// `(format, m, k, n)`: a ragged I2_S tail (k = 3 · 128), several activation rows, and
/// synthetic block scales that change from block to block.
const SHAPES: [(TernaryFormat, usize, usize, usize); 4] = [
    (TernaryFormat::Tq2_0, 37, 768, 1),
    (TernaryFormat::Tq2_0, 64, 2560, 3),
    (TernaryFormat::I2S, 29, 384, 2),
    (TernaryFormat::I2S, 128, 2560, 1),
];

/// Asserts that `run` — returning outputs `[r * m + i]` and chunk dots
/// `[(r * m + i) * chunks + c]` — equals the scalar oracle bit for bit on every case.
pub fn assert_equals_scalar(
    mut run: impl FnMut(&TernaryMatrix<'_>, &QuantizedActivations) -> (Vec<f32>, Vec<i32>),
) {
    let scalar = CpuKernels::new(KernelPath::Scalar, 1).expect("scalar");
    for (format, m, k, n) in SHAPES {
        let (bytes, x) = gauntlet_kernels::roofline::synthetic(format, m, k, n).expect("synthetic");
        let w = TernaryMatrix::new(format, m, k, &bytes).expect("matrix");
        let mut want = vec![0.0f32; m * n];
        scalar.gemm(&w, &x, &mut want).expect("scalar");
        let (got, dots) = run(&w, &x);
        let chunks = k.div_ceil(256);
        for i in 0..m {
            let cpu_dots = scalar.row_chunk_dots(&w, i, &x).expect("dots");
            for r in 0..n {
                assert_eq!(
                    &dots[(r * m + i) * chunks..(r * m + i + 1) * chunks],
                    &cpu_dots[r * chunks..(r + 1) * chunks],
                    "{format} row {i} activation row {r}: chunk dots"
                );
            }
        }
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want), "{format} {m}x{k} n={n}: outputs");
    }
}
