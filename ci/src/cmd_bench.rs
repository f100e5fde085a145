//! `gauntlet bench kernels`: cold ternary GEMV timings against the machine's
//! streaming-read bandwidth, measured in the same run on same-sized buffers.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use gauntlet_kernels::roofline::{self, Measurement};
use gauntlet_kernels::{CpuKernels, TernaryFormat};
use serde::Serialize;

use crate::exit;

/// Arguments of `gauntlet bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
}

#[derive(Debug, Subcommand)]
enum BenchWhat {
    /// Ternary GEMV per format and shape: time, weight GB/s, streaming-read GB/s, roofline.
    ///
    /// Each figure is cold: the weights rotate over >= 1 GiB of copies, so they come
    /// from DRAM, and the streaming read is measured over the same windows in the same
    /// run (roofline = weight GB/s / read GB/s). "hot GB/s" is the same GEMV on one
    /// matrix used over and over; when that matrix fits in half the last-level cache
    /// and even its speed is below the read, the bound column says "compute": the
    /// kernel, not the memory system, limits the roofline (else "memory"). A matrix too
    /// big for the cache, or a cache size the OS does not report, gives "unknown".
    ///
    /// "threads used" is how many threads' worth of work the cold rounds got (all row
    /// pieces over the busiest thread's): near --threads on a quiet machine, towards 1
    /// where another process or the hypervisor took cores. Rows well below are marked
    /// with "*": their figures are not those of --threads threads.
    Kernels(KernelsArgs),
}

/// Arguments of `gauntlet bench kernels`.
#[derive(Debug, Args)]
struct KernelsArgs {
    /// Print `{"results": [...]}` JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Threads per GEMV (default: all available cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Only this shape, as MxK (e.g. 6912x2560); default: BitNet 2B's three shapes.
    #[arg(long, value_parser = parse_shape)]
    shape: Option<(usize, usize)>,
    /// Activation rows (1 = GEMV).
    #[arg(long, default_value_t = 1)]
    n: usize,
    /// Minimum measuring time per figure, e.g. "300ms".
    #[arg(long, default_value = "300ms", value_parser = humantime::parse_duration)]
    min_time: Duration,
}

/// BitNet b1.58 2B's projection shapes (M × K).
const SHAPES: [(usize, usize); 3] = [(2560, 2560), (6912, 2560), (2560, 6912)];

fn parse_shape(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("shape {s:?} is not MxK with positive integers, e.g. 6912x2560");
    let (m, k) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let m: usize = m.trim().parse().map_err(|_| bad())?;
    let k: usize = k.trim().parse().map_err(|_| bad())?;
    if m == 0 || k == 0 {
        return Err(bad());
    }
    Ok((m, k))
}

#[derive(Debug, Serialize)]
struct Row {
    format: &'static str,
    m: usize,
    k: usize,
    n: usize,
    threads: usize,
    ns_per_op: f64,
    weight_gbps: f64,
    read_gbps: f64,
    roofline: f64,
    hot_gbps: f64,
    hot_in_cache: bool,
    bound: &'static str,
    parallelism: f64,
}

impl From<&Measurement> for Row {
    fn from(r: &Measurement) -> Self {
        Row {
            format: r.format.name(),
            m: r.m,
            k: r.k,
            n: r.n,
            threads: r.threads,
            ns_per_op: r.ns_per_op,
            weight_gbps: r.weight_gbps,
            read_gbps: r.read_gbps,
            roofline: r.roofline(),
            hot_gbps: r.hot_gbps,
            hot_in_cache: r.hot_in_cache,
            bound: r.bound().name(),
            parallelism: r.parallelism,
        }
    }
}

#[derive(Debug, Serialize)]
struct Report {
    results: Vec<Row>,
}

/// Runs `gauntlet bench`.
pub fn run(args: BenchArgs) -> ExitCode {
    match args.what {
        BenchWhat::Kernels(a) => run_kernels(a),
    }
}

fn run_kernels(args: KernelsArgs) -> ExitCode {
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let kernels = match CpuKernels::from_env(threads) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::code(exit::INVALID);
        }
    };
    let shapes: Vec<(usize, usize)> = args.shape.map_or_else(|| SHAPES.to_vec(), |s| vec![s]);
    let mut rows = Vec::new();
    let mut starved = false;
    if !args.json {
        println!(
            "kernel path: {}, threads: {}, cold rotation over >= 1 GiB of copies",
            kernels.path(),
            kernels.threads()
        );
        println!(
            "{:<6} {:>11} {:>3} {:>12} {:>12} {:>10} {:>9} {:>9} {:>8}  threads used",
            "format",
            "MxK",
            "n",
            "us/op",
            "weight GB/s",
            "read GB/s",
            "roofline",
            "hot GB/s",
            "bound"
        );
    }
    for format in [
        TernaryFormat::Tq2_0,
        TernaryFormat::I2S,
        TernaryFormat::Tq1_0,
    ] {
        for &(m, k) in &shapes {
            let r = match roofline::measure_cold(&kernels, format, m, k, args.n, args.min_time) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {format} {m}x{k}: {e}");
                    let refused = matches!(e, gauntlet_kernels::KernelError::OutOfMemory { .. });
                    return exit::code(if refused {
                        exit::WONT_FIT
                    } else {
                        exit::INVALID
                    });
                }
            };
            let short = short_of_threads(&r);
            starved |= short;
            if !args.json {
                println!(
                    "{:<6} {:>11} {:>3} {:>12.1} {:>12.2} {:>10.2} {:>9.2} {:>9.2} {:>8}  {:.1}{}",
                    format.name(),
                    format!("{m}x{k}"),
                    r.n,
                    r.ns_per_op / 1e3,
                    r.weight_gbps,
                    r.read_gbps,
                    r.roofline(),
                    r.hot_gbps,
                    r.bound().name(),
                    r.parallelism,
                    if short { " *" } else { "" }
                );
            }
            rows.push(Row::from(&r));
        }
    }
    if starved {
        // On stderr, so that `--json` output stays one JSON document.
        eprintln!(
            "note: rows marked * (\"parallelism\" in JSON) ran on fewer than {} threads' worth \
             of cores: another process or the hypervisor took cores during the run, so \
             those figures are not {}-thread figures; rerun them on a quiet machine",
            kernels.threads(),
            kernels.threads()
        );
    }
    if args.json {
        match serde_json::to_string_pretty(&Report { results: rows }) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: writing JSON: {e}");
                return exit::code(exit::IO);
            }
        }
    }
    exit::code(exit::OK)
}

/// Whether a measurement's kernel rounds got well under the threads asked for: more
/// than half a thread short (two threads sharing 16 pieces 9 to 7 still count as two).
fn short_of_threads(r: &Measurement) -> bool {
    r.threads > 1 && r.parallelism < r.threads as f64 - 0.5
}

#[cfg(test)]
mod tests {
    use super::{parse_shape, short_of_threads};
    use gauntlet_kernels::TernaryFormat;
    use gauntlet_kernels::roofline::Measurement;

    #[test]
    fn rows_more_than_half_a_thread_short_are_marked() {
        let measured = |threads: usize, parallelism: f64| Measurement {
            format: TernaryFormat::Tq2_0,
            m: 2560,
            k: 2560,
            n: 1,
            threads,
            ns_per_op: 60_000.0,
            weight_gbps: 28.0,
            read_gbps: 30.0,
            hot_gbps: 45.0,
            hot_in_cache: true,
            parallelism,
        };
        assert!(
            short_of_threads(&measured(2, 1.2)),
            "one core's worth of two"
        );
        assert!(!short_of_threads(&measured(2, 16.0 / 9.0)), "9 to 7 is two");
        assert!(!short_of_threads(&measured(2, 2.0)));
        assert!(short_of_threads(&measured(4, 3.4)));
        assert!(
            !short_of_threads(&measured(1, 1.0)),
            "one thread is never short"
        );
    }

    #[test]
    fn shape_parsing() {
        let cases: [(&str, Option<(usize, usize)>); 6] = [
            ("6912x2560", Some((6912, 2560))),
            ("2560X6912", Some((2560, 6912))),
            (" 256 x 512 ", Some((256, 512))),
            ("6912", None),
            ("0x256", None),
            ("ax256", None),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_shape(input).ok(), expected, "{input:?}");
        }
    }
}
