//! Measuring kernels against the machine's memory bandwidth, for `gauntlet bench
//! kernels` and the criterion benches: a rotating set of >1 GiB of distinct weight
//! copies (so every GEMV reads DRAM, not cache) and a streaming-read baseline over
//! the same-sized windows with the same threads, measured in the same run; plus the
//! same GEMV on one cache-resident matrix, which tells a kernel that memory holds
//! back from one that its own arithmetic does ([`Measurement::bound`]).

use std::time::{Duration, Instant};

use crate::cpu::CpuKernels;
use crate::error::KernelError;
use crate::format::TernaryFormat;
use crate::matrix::TernaryMatrix;
use crate::quant::QuantizedActivations;

/// Bytes a cold rotation must span: far beyond any last-level cache.
pub const COLD_SPAN: usize = 1 << 30;

/// Many distinct copies of one tensor laid end to end, visited round-robin.
pub struct ColdSet {
    buffer: Vec<u8>,
    tensor_bytes: usize,
    copies: usize,
    next: usize,
}

impl ColdSet {
    /// Copies `tensor` until the copies span at least `span` bytes.
    /// Fails (instead of aborting) when the copies do not fit in memory.
    pub fn new(tensor: &[u8], span: usize) -> Result<Self, KernelError> {
        let tensor_bytes = tensor.len().max(1);
        let copies = span.div_ceil(tensor_bytes).max(2);
        let bytes = copies.saturating_mul(tensor_bytes);
        let mut buffer = Vec::new();
        buffer
            .try_reserve_exact(bytes)
            .map_err(|_| KernelError::OutOfMemory {
                bytes,
                what: "cold-rotation copies",
            })?;
        for _ in 0..copies {
            buffer.extend_from_slice(tensor);
        }
        Ok(Self {
            buffer,
            tensor_bytes,
            copies,
            next: 0,
        })
    }

    /// The next copy in the rotation.
    pub fn next_copy(&mut self) -> &[u8] {
        let at = self.next * self.tensor_bytes;
        self.next = (self.next + 1) % self.copies;
        &self.buffer[at..at + self.tensor_bytes]
    }

    /// Number of copies.
    pub fn copies(&self) -> usize {
        self.copies
    }
}

/// Largest synthetic matrix (weights): 1 GiB of 2-bit codes.
pub const MAX_SYNTHETIC_WEIGHTS: usize = 1 << 32;

/// One measured configuration, as `gauntlet bench kernels --json` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// Weight format.
    pub format: TernaryFormat,
    /// Rows.
    pub m: usize,
    /// Columns.
    pub k: usize,
    /// Activation rows.
    pub n: usize,
    /// Threads.
    pub threads: usize,
    /// Time per GEMV/GEMM over the cold rotation (median of alternating rounds).
    pub ns_per_op: f64,
    /// Weight bytes read per second.
    pub weight_gbps: f64,
    /// Streaming-read bandwidth over same-sized cold windows, same threads, same run
    /// (median of the read rounds interleaved with the kernel's).
    pub read_gbps: f64,
    /// Weight bytes per second with one matrix used over and over, so it stays in
    /// cache: the kernel's own ceiling, whatever memory can deliver.
    pub hot_gbps: f64,
    /// Whether that matrix fits in half the last-level cache ([`hot_fits_in_cache`]).
    /// When it does not (or the cache size is unknown), the hot figure also streams
    /// from DRAM and says nothing about the kernel's own ceiling.
    pub hot_in_cache: bool,
    /// How many threads' worth of work the cold kernel rounds got
    /// ([`parallelism`](crate::cpu::parallelism)): about `threads` on a machine that
    /// gave every thread a core, towards 1 where another process or the hypervisor
    /// took cores — then the figures are not those of `threads` threads.
    pub parallelism: f64,
}

impl Measurement {
    /// Fraction of the streaming-read bandwidth the kernel reaches.
    pub fn roofline(&self) -> f64 {
        if self.read_gbps > 0.0 {
            self.weight_gbps / self.read_gbps
        } else {
            0.0
        }
    }

    /// What limits the cold figure: `Compute` when the kernel is slower than the
    /// streaming read even with its matrix in cache (a faster memory system would not
    /// help; a cheaper kernel would), else `Memory`; `Unknown` when the matrix is too
    /// big for the cache, so "hot" was not.
    pub fn bound(&self) -> Bound {
        if !self.hot_in_cache {
            Bound::Unknown
        } else if self.hot_gbps < self.read_gbps {
            Bound::Compute
        } else {
            Bound::Memory
        }
    }
}

/// The resource that limits a cold measurement (see [`Measurement::bound`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// The kernel's arithmetic: its in-cache speed is below the streaming read.
    Compute,
    /// Reading the weights from memory.
    Memory,
    /// Not known: the matrix does not fit in the cache (or its size is unknown), so
    /// the hot figure read DRAM too.
    Unknown,
}

impl Bound {
    /// `"compute"` or `"memory"`.
    pub fn name(self) -> &'static str {
        match self {
            Bound::Compute => "compute",
            Bound::Memory => "memory",
            Bound::Unknown => "unknown",
        }
    }
}

/// Bytes of the CPU's last-level cache (the highest-level data or unified cache of
/// CPU 0, from Linux sysfs); `None` where that cannot be read.
pub fn last_level_cache_bytes() -> Option<usize> {
    let dir = std::fs::read_dir("/sys/devices/system/cpu/cpu0/cache").ok()?;
    let read = |path: std::path::PathBuf| std::fs::read_to_string(path).ok();
    dir.filter_map(|entry| {
        let path = entry.ok()?.path();
        let kind = read(path.join("type"))?;
        if kind.trim() == "Instruction" {
            return None;
        }
        let level: u32 = read(path.join("level"))?.trim().parse().ok()?;
        Some((level, parse_cache_size(&read(path.join("size"))?)?))
    })
    .max()
    .map(|(_, bytes)| bytes)
}

/// A sysfs cache size: `"32768K"`, `"1M"` or plain bytes.
fn parse_cache_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let scale = match unit {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return None,
    };
    digits.parse::<usize>().ok()?.checked_mul(scale)
}

/// Whether `weight_bytes` of one matrix stay cache-resident when used over and over:
/// at most half of a last-level cache of `cache_bytes` (the rest is left to the
/// activations, the outputs and whatever else runs), and never when the size is unknown.
pub fn hot_fits_in_cache(weight_bytes: usize, cache_bytes: Option<usize>) -> bool {
    cache_bytes.is_some_and(|cache| weight_bytes <= cache / 2)
}

/// Deterministic weights and activations for a shape (a fixed LCG, no RNG dependency).
pub fn synthetic(
    format: TernaryFormat,
    m: usize,
    k: usize,
    n: usize,
) -> Result<(Vec<u8>, QuantizedActivations), KernelError> {
    if m.checked_mul(k).is_none_or(|w| w > MAX_SYNTHETIC_WEIGHTS) {
        let reason = "synthetic matrices are limited to 2^32 weights (1 GiB at 2 bits)";
        return Err(crate::error::FormatError::ShapeTooLarge { m, k, reason }.into());
    }
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ (m as u64) << 20 ^ k as u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let mut bytes = Vec::new();
    let block = format.block_weights();
    let mut codes = vec![0i8; block];
    for b in 0..(m * k / block) {
        for c in codes.iter_mut() {
            *c = (next() % 3) as i8 - 1;
        }
        format.encode_codes(&codes, 0.02 + (b % 7) as f32 * 0.01, &mut bytes)?;
    }
    if format == TernaryFormat::I2S {
        bytes.extend_from_slice(&crate::format::i2_s::scale_trailer(0.05));
    }
    let x: Vec<f32> = (0..n * k)
        .map(|_| (next() % 2001) as f32 / 1000.0 - 1.0)
        .collect();
    Ok((bytes, QuantizedActivations::quantize(&x, n, k)?))
}

/// Times cold GEMMs of `m × k` in `format` against `n` activation rows, and streaming
/// reads of as many same-sized windows, on `kernels`: each side for about `min_time`.
pub fn measure_cold(
    kernels: &CpuKernels,
    format: TernaryFormat,
    m: usize,
    k: usize,
    n: usize,
    min_time: Duration,
) -> Result<Measurement, KernelError> {
    measure_rotating(kernels, format, m, k, n, min_time, COLD_SPAN)
}

/// As [`measure_cold`], rotating over copies spanning `span` bytes (tests use a small
/// span; figures meant as "cold" need [`COLD_SPAN`]).
pub fn measure_rotating(
    kernels: &CpuKernels,
    format: TernaryFormat,
    m: usize,
    k: usize,
    n: usize,
    min_time: Duration,
    span: usize,
) -> Result<Measurement, KernelError> {
    let (bytes, x) = synthetic(format, m, k, n)?;
    let mut set = ColdSet::new(&bytes, span)?;
    let mut out = vec![0.0f32; m * n];
    let weight_bytes = TernaryMatrix::new(format, m, k, &bytes)?.weight_bytes();
    // The copies were just written, so their pages are mapped; a few calls warm the pool.
    for _ in 0..3 {
        let w = TernaryMatrix::new(format, m, k, set.next_copy())?;
        kernels.gemm(&w, &x, &mut out)?;
    }
    // Kernel and read rounds alternate, so load from other processes that comes and
    // goes lands on both sides of the ratio alike; each side reports its median round,
    // so a round in which another process took a core (on a 2-vCPU runner one stalled
    // thread doubles the round) moves neither figure.
    const ROUND: u32 = 4;
    const MIN_ROUNDS: usize = 9;
    let (mut kernel_rounds, mut read_rounds) = (Vec::new(), Vec::new());
    let mut sink = 0u64;
    let taken = kernels.pieces_taken();
    let start = Instant::now();
    while kernel_rounds.len() < MIN_ROUNDS || start.elapsed() < 2 * min_time {
        let t = Instant::now();
        for _ in 0..ROUND {
            let w = TernaryMatrix::new(format, m, k, set.next_copy())?;
            kernels.gemm(&w, &x, &mut out)?;
        }
        kernel_rounds.push(t.elapsed());
        let t = Instant::now();
        for _ in 0..ROUND {
            sink = sink.wrapping_add(kernels.stream_read(set.next_copy()));
        }
        read_rounds.push(t.elapsed());
    }
    std::hint::black_box(sink);
    let parallelism = crate::cpu::parallelism(&taken, &kernels.pieces_taken());
    // The same matrix over and over: after the first call it is served from cache.
    let hot = TernaryMatrix::new(format, m, k, &bytes)?;
    kernels.gemm(&hot, &x, &mut out)?;
    let mut hot_rounds = Vec::new();
    let start = Instant::now();
    while hot_rounds.len() < MIN_ROUNDS || start.elapsed() < min_time / 2 {
        let t = Instant::now();
        for _ in 0..ROUND {
            kernels.gemm(&hot, &x, &mut out)?;
        }
        hot_rounds.push(t.elapsed());
    }
    let kernel_time = median(&mut kernel_rounds) / ROUND;
    let read_time = median(&mut read_rounds) / ROUND;
    let hot_time = median(&mut hot_rounds) / ROUND;
    let gbps = |t: Duration| weight_bytes as f64 / t.as_secs_f64() / 1e9;
    Ok(Measurement {
        format,
        m,
        k,
        n,
        threads: kernels.threads(),
        ns_per_op: kernel_time.as_secs_f64() * 1e9,
        weight_gbps: gbps(kernel_time),
        read_gbps: gbps(read_time),
        hot_gbps: gbps(hot_time),
        hot_in_cache: hot_fits_in_cache(weight_bytes, last_level_cache_bytes()),
        parallelism,
    })
}

/// The middle element (the upper one of an even count); zero when empty.
fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::KernelPath;

    #[test]
    fn oversized_synthetic_shape_is_an_error_not_an_allocation() {
        let err = synthetic(TernaryFormat::Tq2_0, 1 << 20, 1 << 20, 1).expect_err("2^40 weights");
        assert!(err.to_string().contains("2^32 weights"), "{err}");
    }

    #[test]
    fn cold_set_rotates_over_distinct_copies_spanning_the_request() {
        let tensor: Vec<u8> = (0..=255).collect();
        let mut set = ColdSet::new(&tensor, 1000).expect("small buffer");
        assert_eq!(set.copies(), 4);
        let first = set.next_copy().as_ptr();
        let second = set.next_copy().as_ptr();
        assert_eq!(second as usize - first as usize, 256);
        set.next_copy();
        set.next_copy();
        assert_eq!(set.next_copy().as_ptr(), first, "wraps after the last copy");
    }

    #[test]
    fn bound_names_the_slower_side() {
        let measured = |hot_gbps: f64, hot_in_cache: bool| Measurement {
            format: TernaryFormat::Tq1_0,
            m: 1,
            k: 256,
            n: 1,
            threads: 2,
            ns_per_op: 1.0,
            weight_gbps: 18.0,
            read_gbps: 30.0,
            hot_gbps,
            hot_in_cache,
            parallelism: 2.0,
        };
        let at = |hot_gbps: f64| measured(hot_gbps, true);
        // In cache it still cannot match the read: a kernel limit.
        assert_eq!(at(20.0).bound(), Bound::Compute);
        assert_eq!(at(20.0).bound().name(), "compute");
        // Fast in cache, slow from DRAM: the memory system's.
        assert_eq!(at(60.0).bound(), Bound::Memory);
        assert_eq!(at(60.0).bound().name(), "memory");
        // Too big for the cache: the hot run streamed from DRAM as well.
        assert_eq!(measured(20.0, false).bound(), Bound::Unknown);
        assert_eq!(measured(60.0, false).bound().name(), "unknown");
    }

    #[test]
    fn cache_sizes_parse_and_bound_what_counts_as_hot() {
        assert_eq!(parse_cache_size("32768K\n"), Some(32 << 20));
        assert_eq!(parse_cache_size("1M"), Some(1 << 20));
        assert_eq!(parse_cache_size("4096"), Some(4096));
        assert_eq!(parse_cache_size("12Q"), None);
        assert_eq!(parse_cache_size(""), None);
        assert_eq!(parse_cache_size("99999999999999999999G"), None);
        assert!(hot_fits_in_cache(16 << 20, Some(32 << 20)));
        assert!(!hot_fits_in_cache((16 << 20) + 1, Some(32 << 20)));
        assert!(
            !hot_fits_in_cache(1, None),
            "unknown size: never claimed hot"
        );
    }

    #[test]
    fn last_level_cache_is_read_where_sysfs_describes_it() {
        let sysfs = std::path::Path::new("/sys/devices/system/cpu/cpu0/cache/index0/size");
        if !sysfs.exists() {
            println!("SKIP no sysfs cache description on this machine");
            return;
        }
        let llc = last_level_cache_bytes().expect("sysfs describes the caches");
        let first = parse_cache_size(&std::fs::read_to_string(sysfs).expect("index0 size"))
            .expect("index0 size parses");
        assert!(llc >= first, "last level {llc} below level-1 {first}");
    }

    #[test]
    fn measurement_reports_consistent_rates() {
        let kernels = CpuKernels::new(KernelPath::detect(), 1).expect("kernels");
        for format in TernaryFormat::ALL {
            let r = measure_rotating(
                &kernels,
                format,
                64,
                512,
                1,
                Duration::from_millis(5),
                1 << 20,
            )
            .expect("measure");
            let bytes = TernaryMatrix::new(
                format,
                64,
                512,
                &synthetic(format, 64, 512, 1).expect("data").0,
            )
            .expect("matrix")
            .weight_bytes();
            assert!(
                r.ns_per_op > 0.0 && r.read_gbps > 0.0 && r.hot_gbps > 0.0,
                "{r:?}"
            );

            let implied = bytes as f64 / r.ns_per_op;
            assert!(
                (implied - r.weight_gbps).abs() <= 1e-9 * implied.max(1.0),
                "{r:?}"
            );
            assert!((r.roofline() - r.weight_gbps / r.read_gbps).abs() < 1e-12);
            assert_eq!(r.parallelism, 1.0, "one thread does every piece: {r:?}");
        }
    }
}
