//! Quick roofline probe: `cargo run --release -p gauntlet-kernels --example probe -- [threads] [n]`.
//! Prints hot (same matrix) and cold (>1 GiB rotation) GEMV figures per format and shape.
use std::time::{Duration, Instant};

use gauntlet_kernels::{CpuKernels, TernaryFormat, TernaryMatrix, roofline};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let threads = args.first().copied().unwrap_or(2);
    let n = args.get(1).copied().unwrap_or(1);
    let kernels = CpuKernels::from_env(threads)?;
    for format in [
        TernaryFormat::Tq2_0,
        TernaryFormat::I2S,
        TernaryFormat::Tq1_0,
    ] {
        for (m, k) in [(2560, 2560), (6912, 2560), (2560, 6912)] {
            let (bytes, x) = roofline::synthetic(format, m, k, n)?;
            let w = TernaryMatrix::new(format, m, k, &bytes)?;
            let mut out = vec![0.0f32; m * n];
            let start = Instant::now();
            let mut ops = 0;
            while ops < 5 || start.elapsed() < Duration::from_millis(200) {
                kernels.gemm(&w, &x, &mut out)?;
                ops += 1;
            }
            let hot = start.elapsed().as_secs_f64() / f64::from(ops);
            let cpu = thread_cpu_seconds();
            for _ in 0..20 {
                kernels.gemm(&w, &x, &mut out)?;
            }
            let cpu_per_op = (thread_cpu_seconds() - cpu) / 20.0;
            let r = roofline::measure_cold(&kernels, format, m, k, n, Duration::from_millis(300))?;
            println!(
                "{} {format} {m}x{k} n={n} t={threads}: hot {:.1} us ({:.1} GB/s, caller CPU {:.1} us) | cold {:.1} us, {:.1} GB/s, read {:.1} GB/s, roofline {:.2}",
                kernels.path(),
                hot * 1e6,
                w.weight_bytes() as f64 / hot / 1e9,
                cpu_per_op * 1e6,
                r.ns_per_op / 1e3,
                r.weight_gbps,
                r.read_gbps,
                r.roofline()
            );
        }
    }
    Ok(())
}

/// CPU time of the calling thread: unaffected by time slices lost to other processes.
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}
