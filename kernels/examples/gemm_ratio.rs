//! GEMM n = 8 against GEMV n = 1, timed op by op so a noisy machine shows in the
//! spread: `cargo run --release -p gauntlet-kernels --example gemm_ratio -- [threads]`.
//! Prints min and median µs per op (hot: one matrix; cold: a >1 GiB rotation) and the
//! n=8 / n=1 ratio of each. Speed claims live in the criterion bench; this is a probe.
use std::time::{Duration, Instant};

use gauntlet_kernels::roofline::{COLD_SPAN, ColdSet, synthetic};
use gauntlet_kernels::{CpuKernels, TernaryFormat, TernaryMatrix};

fn stats(mut t: Vec<Duration>) -> (f64, f64) {
    t.sort();
    (t[0].as_secs_f64() * 1e6, t[t.len() / 2].as_secs_f64() * 1e6)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let threads = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2);
    let kernels = CpuKernels::from_env(threads)?;
    let (m, k) = (6912, 2560);
    println!("{} path, {threads} threads, {m}x{k}", kernels.path());
    for format in [
        TernaryFormat::Tq2_0,
        TernaryFormat::I2S,
        TernaryFormat::Tq1_0,
    ] {
        let mut line = format!("{format:<6}");
        let mut meds = Vec::new();
        for n in [1, 8] {
            let (bytes, x) = synthetic(format, m, k, n)?;
            let mut out = vec![0.0f32; m * n];
            let w = TernaryMatrix::new(format, m, k, &bytes)?;
            let mut hot = Vec::new();
            for _ in 0..60 {
                let t = Instant::now();
                kernels.gemm(&w, &x, &mut out)?;
                hot.push(t.elapsed());
            }
            let mut cold_set = ColdSet::new(&bytes, COLD_SPAN)?;
            let mut cold = Vec::new();
            for _ in 0..200 {
                let w = TernaryMatrix::new(format, m, k, cold_set.next_copy())?;
                let t = Instant::now();
                kernels.gemm(&w, &x, &mut out)?;
                cold.push(t.elapsed());
            }
            let (hmin, hmed) = stats(hot);
            let (cmin, cmed) = stats(cold);
            meds.push((hmin, hmed, cmin, cmed));
            line += &format!("  n={n}: hot {hmin:.0}/{hmed:.0} cold {cmin:.0}/{cmed:.0}");
        }
        let (a, b) = (meds[0], meds[1]);
        line += &format!(
            "  ratio hot {:.2}/{:.2} cold {:.2}/{:.2}",
            b.0 / a.0,
            b.1 / a.1,
            b.2 / a.2,
            b.3 / a.3
        );
        println!("{line}");
    }
    Ok(())
}
