//! The CUDA kernel's arithmetic, checked without a GPU: `tests/cuda_on_cpu/harness.cpp`
//! compiles `src/gpu/ternary_gemv.cu` itself as C++ (lanes as threads, a barrier per
//! warp shuffle, `__fmul_rn`/`__fadd_rn` as single IEEE roundings with contraction
//! off) and runs the launch grid the GPU backend uses. Its chunk dots and outputs
//! must equal the scalar reference bit for bit, as `tests/gpu.rs` demands of a real
//! GPU. This catches a wrong decode, order or rounding in the CUDA source here; what
//! it cannot catch (the cudarc launch, device memory) stays with `tests/gpu.rs`.
//!
//! Needs a C++20 compiler (`$CXX`, else `c++`); without one it prints `SKIP`, and
//! `GAUNTLET_REQUIRE_CXX=1` turns that into a failure.

mod gpu_cases;

use std::path::{Path, PathBuf};
use std::process::Command;

use gauntlet_kernels::quant::QuantizedActivations;
use gauntlet_kernels::{TernaryFormat, TernaryMatrix};

fn require_cxx() -> bool {
    std::env::var("GAUNTLET_REQUIRE_CXX").is_ok_and(|v| v == "1")
}

/// Builds the harness into `dir`; `None` (after one SKIP line) when no compiler runs.
fn build_harness(dir: &Path) -> Option<PathBuf> {
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cuda_on_cpu/harness.cpp");
    let exe = dir.join("harness");
    let out = Command::new(&cxx)
        .args([
            "-std=c++20",
            "-O1",
            "-ffp-contract=off",
            "-pthread",
            "-Wall",
            "-Werror",
        ])
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output();
    match out {
        Ok(o) if o.status.success() => Some(exe),
        Ok(o) => panic!(
            "{cxx} could not build the CUDA-on-CPU harness:\n{}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => {
            assert!(
                !require_cxx(),
                "GAUNTLET_REQUIRE_CXX=1 but `{cxx}` does not run: {e}"
            );
            println!("SKIP no C++ compiler (`{cxx}`: {e})");
            None
        }
    }
}

/// Runs the CUDA source over `w × x`: (outputs `[r * m + i]`, dots `[(r * m + i) * chunks + c]`).
fn run_cuda_source(
    exe: &Path,
    dir: &Path,
    w: &TernaryMatrix<'_>,
    x: &QuantizedActivations,
) -> (Vec<f32>, Vec<i32>) {
    let (m, k, n) = (w.m(), w.k(), x.n());
    let format: i32 = match w.format() {
        TernaryFormat::Tq2_0 => 0,
        TernaryFormat::I2S => 1,
        other => panic!("the CUDA kernel has no {other} path"),
    };
    // As the GPU backend uploads them: the rows back to back (no I2_S trailer).
    let codes: Vec<u8> = (0..m).flat_map(|i| w.row(i).iter().copied()).collect();
    let mut input = Vec::new();
    for v in [format, m as i32, k as i32, n as i32] {
        input.extend_from_slice(&v.to_le_bytes());
    }
    input.extend_from_slice(&w.tensor_scale().to_le_bytes());
    input.extend_from_slice(&(codes.len() as u64).to_le_bytes());
    input.extend_from_slice(&codes);
    for r in 0..n {
        input.extend(x.row(r).iter().map(|&v| v as u8));
    }
    for r in 0..n {
        input.extend_from_slice(&x.inv_scale(r).to_le_bytes());
    }
    let (inp, outp) = (dir.join("in.bin"), dir.join("out.bin"));
    std::fs::write(&inp, &input).expect("write harness input");
    let status = Command::new(exe)
        .arg(&inp)
        .arg(&outp)
        .status()
        .expect("run harness");
    assert!(status.success(), "harness failed: {status}");
    let out = std::fs::read(&outp).expect("harness output");
    let chunks = k.div_ceil(256);
    assert_eq!(out.len(), 4 * (m * n + n * m * chunks), "output size");
    let (y, dots) = out.split_at(4 * m * n);
    let y = y
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    let dots = dots
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    (y, dots)
}

#[test]
fn cuda_source_equals_scalar_bit_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(exe) = build_harness(dir.path()) else {
        return;
    };
    gpu_cases::assert_equals_scalar(|w, x| run_cuda_source(&exe, dir.path(), w, x));
}
