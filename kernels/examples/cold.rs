//! Cold roofline samples at 6912×2560, 2 threads: `cargo run --release -p gauntlet-kernels --example cold -- [rounds] [formats…]`.
use std::time::Duration;

use gauntlet_kernels::{CpuKernels, TernaryFormat, roofline};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds = args.first().and_then(|a| a.parse().ok()).unwrap_or(6);
    let formats: Vec<TernaryFormat> = TernaryFormat::ALL
        .into_iter()
        .filter(|f| {
            args.len() < 2
                || args[1..]
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(&f.to_string()))
        })
        .collect();
    let kernels = CpuKernels::from_env(2)?;
    for _ in 0..rounds {
        for &format in &formats {
            let r = roofline::measure_cold(
                &kernels,
                format,
                6912,
                2560,
                1,
                Duration::from_millis(300),
            )?;
            print!(
                "{format} {:.1} us, read {:.1} GB/s, roofline {:.2} | ",
                r.ns_per_op / 1e3,
                r.read_gbps,
                r.roofline()
            );
        }
        println!();
    }
    Ok(())
}
