//! Ternary GEMV/GEMM at BitNet b1.58 2B shapes, hot (one matrix, cache-resident where
//! it fits) and cold (rotating over >1 GiB of copies, so weights come from DRAM), with
//! a streaming-read baseline over the same-sized windows in the same run. Throughput is
//! weight bytes, so criterion's GB/s figures compare directly with the read baseline;
//! a closing summary prints the cold roofline ratios and GEMM n=8 / n=1.
//!
//! `GAUNTLET_KERNEL=scalar|avx2|avx512` picks the path (default: fastest).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gauntlet_kernels::roofline::{COLD_SPAN, ColdSet, measure_cold, synthetic};
use gauntlet_kernels::{CpuKernels, TernaryFormat, TernaryMatrix};

const SHAPES: [(usize, usize); 3] = [(2560, 2560), (6912, 2560), (2560, 6912)];
const FORMATS: [TernaryFormat; 3] = [
    TernaryFormat::Tq2_0,
    TernaryFormat::I2S,
    TernaryFormat::Tq1_0,
];

fn kernels(threads: usize) -> CpuKernels {
    CpuKernels::from_env(threads).expect("GAUNTLET_KERNEL names a path this CPU supports")
}

fn gemv(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemv");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for threads in [1, 2] {
        let kernels = kernels(threads);
        for format in FORMATS {
            for (m, k) in SHAPES {
                let (bytes, x) = synthetic(format, m, k, 1).expect("synthetic weights");
                let w = TernaryMatrix::new(format, m, k, &bytes).expect("matrix");
                let mut out = vec![0.0f32; m];
                group.throughput(Throughput::Bytes(w.weight_bytes() as u64));
                let id = format!("{format}/{m}x{k}/t{threads}");
                group.bench_function(BenchmarkId::new("hot", &id), |b| {
                    b.iter(|| kernels.gemv(&w, &x, &mut out).expect("gemv"));
                });
                let mut cold =
                    ColdSet::new(&bytes, COLD_SPAN).expect("memory for the cold rotation");
                group.bench_function(BenchmarkId::new("cold", &id), |b| {
                    b.iter(|| {
                        let w = TernaryMatrix::new(format, m, k, cold.next_copy()).expect("matrix");
                        kernels.gemv(&w, &x, &mut out).expect("gemv");
                    });
                });
                if format == FORMATS[0] {
                    group.bench_function(
                        BenchmarkId::new("stream_read_cold", format!("{m}x{k}/t{threads}")),
                        |b| {
                            b.iter(|| black_box(kernels.stream_read(cold.next_copy())));
                        },
                    );
                }
            }
        }
    }
    group.finish();
}

fn gemm(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm_cold");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    let kernels = kernels(2);
    let (m, k) = (6912, 2560);
    for format in FORMATS {
        for n in [1, 8, 32] {
            let (bytes, x) = synthetic(format, m, k, n).expect("synthetic weights");
            let mut cold = ColdSet::new(&bytes, COLD_SPAN).expect("memory for the cold rotation");
            let mut out = vec![0.0f32; m * n];
            group.throughput(Throughput::Bytes(bytes.len() as u64));
            group.bench_function(
                BenchmarkId::new(format!("{format}/{m}x{k}/t2"), format!("n{n}")),
                |b| {
                    b.iter(|| {
                        let w = TernaryMatrix::new(format, m, k, cold.next_copy()).expect("matrix");
                        kernels.gemm(&w, &x, &mut out).expect("gemm");
                    });
                },
            );
        }
    }
    group.finish();
}

/// Ratios measured in this run: cold GEMV vs streaming read, GEMM n = 8 vs n = 1.
fn summary(_: &mut Criterion) {
    let kernels = kernels(2);
    let min = Duration::from_millis(500);
    println!("\nsummary ({} path, 2 threads, cold):", kernels.path());
    for format in FORMATS {
        for (m, k) in SHAPES {
            let r = measure_cold(&kernels, format, m, k, 1, min).expect("measure");
            println!(
                "  {format} {m}x{k}: {:.1} us, {:.2} GB/s vs read {:.2} GB/s -> roofline {:.2} \
                 (hot {:.2} GB/s: {}-bound; threads used {:.1})",
                r.ns_per_op / 1e3,
                r.weight_gbps,
                r.read_gbps,
                r.roofline(),
                r.hot_gbps,
                r.bound().name(),
                r.parallelism
            );
        }
        let one = measure_cold(&kernels, format, 6912, 2560, 1, min).expect("measure");
        let eight = measure_cold(&kernels, format, 6912, 2560, 8, min).expect("measure");
        println!(
            "  {format} 6912x2560 GEMM n=8 / GEMV n=1 time ratio: {:.2}",
            eight.ns_per_op / one.ns_per_op
        );
    }
}

criterion_group!(benches, gemv, gemm, summary);
criterion_main!(benches);
