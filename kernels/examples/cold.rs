//! Cold roofline samples (and the hot figure), 2 threads unless given:
//! `cargo run --release -p gauntlet-kernels --example cold -- [--shape MxK] [--threads N]
//! [rounds] [formats…]` (default shape 6912x2560).
use std::time::Duration;

use gauntlet_kernels::{CpuKernels, TernaryFormat, roofline};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let (mut m, mut k) = (6912, 2560);
    if let Some(i) = args.iter().position(|a| a == "--shape") {
        let shape = args.get(i + 1).ok_or("--shape needs MxK")?.clone();
        let (a, b) = shape
            .split_once('x')
            .ok_or("--shape needs MxK, e.g. 2560x6912")?;
        (m, k) = (a.parse()?, b.parse()?);
        args.drain(i..i + 2);
    }
    let mut threads = 2;
    if let Some(i) = args.iter().position(|a| a == "--threads") {
        threads = args.get(i + 1).ok_or("--threads needs N")?.parse()?;
        args.drain(i..i + 2);
    }
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
    let kernels = CpuKernels::from_env(threads)?;
    for _ in 0..rounds {
        for &format in &formats {
            let r = roofline::measure_cold(&kernels, format, m, k, 1, Duration::from_millis(300))?;
            print!(
                "{format} {:.1} us, read {:.1} GB/s, roofline {:.2}, hot {:.1} GB/s | ",
                r.ns_per_op / 1e3,
                r.read_gbps,
                r.roofline(),
                r.hot_gbps
            );
        }
        println!();
    }
    Ok(())
}
