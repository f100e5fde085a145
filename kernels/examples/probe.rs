//! Quick cold-roofline probe: `cargo run --release -p gauntlet-kernels --example probe -- [threads] [n]`.
use std::time::Duration;

use gauntlet_kernels::{CpuKernels, TernaryFormat, roofline};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let threads = args.first().copied().unwrap_or(2);
    let n = args.get(1).copied().unwrap_or(1);
    let kernels = CpuKernels::from_env(threads)?;
    for format in [TernaryFormat::Tq2_0, TernaryFormat::I2S] {
        for (m, k) in [(2560, 2560), (6912, 2560), (2560, 6912)] {
            let r = roofline::measure_cold(&kernels, format, m, k, n, Duration::from_millis(300))?;
            println!(
                "{} {format} {m}x{k} n={n} t={threads}: {:.1} us, {:.1} GB/s weights, read {:.1} GB/s, roofline {:.2}",
                kernels.path(),
                r.ns_per_op / 1e3,
                r.weight_gbps,
                r.read_gbps,
                r.roofline()
            );
        }
    }
    Ok(())
}
