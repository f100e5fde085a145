//! Loading the >1 GiB `bitnet-2b4t` fixture with a warm page cache: read mode and
//! mmap+populate mode, against a plain sequential `read()` of the same file into one
//! reused buffer, all in the same run. Criterion reports each as GB/s; the ratios to
//! the plain read are printed at the end from medians measured in this run.
//!
//! Goals: read mode >= 0.9 x plain read; mmap+populate faster than read mode.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gauntlet_engine::fixture::{Preset, WeightFormat};
use gauntlet_engine::load::{LoadGate, LoadMode, LoadOptions, Loader};

const CHUNK: usize = 64 << 20;

fn fixture() -> PathBuf {
    gauntlet_suites::fixtures::path(Preset::Bitnet2b4t, WeightFormat::Tq2_0, 0)
}

fn plain_read(path: &Path, buf: &mut [u8]) -> u64 {
    let mut f = File::open(path).expect("open");
    let mut total = 0u64;
    loop {
        match f.read(buf) {
            Ok(0) => return total,
            Ok(n) => total += n as u64,
            Err(e) => panic!("read: {e}"),
        }
    }
}

fn load(path: &Path, mode: LoadMode) -> gauntlet_engine::load::LoadedModel {
    Loader::new(LoadOptions::default().mode(mode).gate(LoadGate::new(1)))
        .load_path(path)
        .expect("loads")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn bench(c: &mut Criterion) {
    let path = fixture();
    let len = std::fs::metadata(&path).expect("fixture").len();
    let mut buf = vec![0u8; CHUNK];
    // Warm the page cache so every variant reads from memory, not disk.
    assert_eq!(plain_read(&path, &mut buf), len);

    let mut g = c.benchmark_group("load_bitnet_2b4t");
    g.throughput(Throughput::Bytes(len))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(15));
    g.bench_function("plain_read_reused_buffer", |b| {
        b.iter(|| plain_read(&path, &mut buf))
    });
    g.bench_function("read_mode", |b| {
        b.iter_with_large_drop(|| load(&path, LoadMode::Read))
    });
    g.bench_function("mmap_populate", |b| {
        b.iter_with_large_drop(|| load(&path, LoadMode::Mmap))
    });
    g.finish();

    // Ratios from medians of interleaved runs, so drift in machine load hits all three.
    let (mut plain, mut read, mut mmap) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        let t = Instant::now();
        plain_read(&path, &mut buf);
        plain.push(t.elapsed());
        let t = Instant::now();
        let m = load(&path, LoadMode::Read);
        read.push(t.elapsed());
        drop(m);
        let t = Instant::now();
        let m = load(&path, LoadMode::Mmap);
        mmap.push(t.elapsed());
        drop(m);
    }
    let (p, r, m) = (median(plain), median(read), median(mmap));
    let gbs = |d: Duration| len as f64 / d.as_secs_f64() / 1e9;
    println!(
        "load_bitnet_2b4t ratios (median of 5 interleaved runs, {len} bytes): \
         plain read {:.2} GB/s; read mode {:.2} GB/s = {:.2}x plain (goal >= 0.9); \
         mmap+populate {:.2} GB/s = {:.2}x plain, {:.2}x read mode (goal > 1)",
        gbs(p),
        gbs(r),
        p.as_secs_f64() / r.as_secs_f64(),
        gbs(m),
        p.as_secs_f64() / m.as_secs_f64(),
        r.as_secs_f64() / m.as_secs_f64(),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
