//! Hot single-thread GEMV cost per 256 weights (L2-resident 512×K matrix, K = 2560 unless
//! given, best of 200 rounds):
//! `cargo run --release -p gauntlet-kernels --example hotloop -- [K]`. Times the clock
//! (GHz) gives cycles per block, the figure to compare with the kernels' op counts.
use std::time::Instant;

use gauntlet_kernels::{CpuKernels, TernaryFormat, TernaryMatrix, roofline};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let kernels = CpuKernels::from_env(1)?;
    let k: usize = match std::env::args().nth(1) {
        Some(k) => k
            .parse()
            .map_err(|e| format!("K (weights per row, a multiple of 256) {k:?}: {e}"))?,
        None => 2560,
    };
    for format in [
        TernaryFormat::Tq2_0,
        TernaryFormat::I2S,
        TernaryFormat::Tq1_0,
    ] {
        let m = 512;
        let (bytes, x) = roofline::synthetic(format, m, k, 1)?;
        let w = TernaryMatrix::new(format, m, k, &bytes)?;
        let mut out = vec![0.0f32; m];
        let mut best = f64::MAX;
        for _ in 0..200 {
            let t = Instant::now();
            for _ in 0..10 {
                kernels.gemm(&w, &x, &mut out)?;
            }
            best = best.min(t.elapsed().as_secs_f64() / 10.0);
        }
        let blocks = (m * k / 256) as f64;
        println!(
            "{format}: {:.2} ns per 256 weights, {:.1} GB/s",
            best * 1e9 / blocks,
            w.weight_bytes() as f64 / best / 1e9
        );
    }
    Ok(())
}
