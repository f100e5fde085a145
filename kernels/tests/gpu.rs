//! GPU backend: a bounded, panic-free init everywhere; bit-equality with the scalar
//! oracle where a GPU exists (`SKIP no GPU` elsewhere, a failure under
//! `GAUNTLET_REQUIRE_GPU=1`).

mod gpu_cases;

use std::time::{Duration, Instant};

use gauntlet_kernels::gpu::{self, Backend, GpuBackend, GpuInitError};

fn require_gpu() -> bool {
    std::env::var("GAUNTLET_REQUIRE_GPU").is_ok_and(|v| v == "1")
}

/// The GPU, or `None` after printing the one SKIP line (panicking when a GPU is required).
fn gpu_or_skip() -> Option<GpuBackend> {
    match GpuBackend::init(Duration::from_secs(60)) {
        Ok(gpu) => Some(gpu),
        Err(e) => {
            assert!(!require_gpu(), "GAUNTLET_REQUIRE_GPU=1 but no GPU: {e}");
            println!("SKIP no GPU ({e})");
            None
        }
    }
}

#[test]
fn gpu_init_fails_cleanly_within_its_budget() {
    let budget = Duration::from_secs(1);
    let start = Instant::now();
    let result = GpuBackend::init(budget);
    let elapsed = start.elapsed();
    assert!(
        elapsed < budget + Duration::from_millis(250),
        "init took {elapsed:?} with a {budget:?} budget"
    );
    match result {
        Ok(gpu) => assert!(
            gpu::driver_library_present(),
            "a GPU initialized without a driver library: {gpu:?}"
        ),
        Err(GpuInitError::Unavailable { reason }) => {
            assert!(!reason.is_empty());
            if !gpu::driver_library_present() {
                assert!(
                    elapsed < Duration::from_millis(100),
                    "the library check alone took {elapsed:?}"
                );
            }
        }
        Err(GpuInitError::TimedOut {
            elapsed: waited,
            budget: b,
            ..
        }) => {
            assert_eq!(b, budget);
            assert!(waited >= budget, "timed out early: {waited:?}");
        }
    }
}

#[test]
fn best_backend_falls_back_to_cpu_with_a_reason() {
    let backend = Backend::best(Duration::from_secs(1), 1).expect("a backend");
    match &backend {
        Backend::Gpu(_) => assert!(gpu::driver_library_present()),
        Backend::Cpu { gpu, .. } => {
            let line = backend.describe();
            assert!(
                line.starts_with("CPU (") && line.contains(&gpu.to_string()),
                "{line}"
            );
        }
    }
}

#[test]
fn init_timeout_parsing() {
    let default = Duration::from_secs(30);
    let cases: [(&str, Option<&str>, Result<Duration, ()>); 5] = [
        ("unset uses the default", None, Ok(default)),
        ("blank uses the default", Some("  "), Ok(default)),
        ("seconds", Some("5s"), Ok(Duration::from_secs(5))),
        ("compound", Some("1m 30s"), Ok(Duration::from_secs(90))),
        ("bare number is rejected", Some("30"), Err(())),
    ];
    for (name, value, expected) in cases {
        let got = gpu::parse_init_timeout(value, default);
        match expected {
            Ok(d) => assert_eq!(got, Ok(d), "{name}"),
            Err(()) => assert!(
                got.as_ref()
                    .is_err_and(|e| e.contains("GAUNTLET_GPU_INIT_TIMEOUT")),
                "{name}: {got:?}"
            ),
        }
    }
}

#[test]
fn gpu_gemm_equals_scalar_bit_exactly() {
    let Some(gpu) = gpu_or_skip() else { return };
    gpu_cases::assert_equals_scalar(|w, x| {
        let resident = gpu.upload(w).expect("upload");
        gpu.gemm_with_dots(&resident, x, true).expect("gpu gemm")
    });
}

/// The CUDA source compiles with NVRTC (needs only libnvrtc, not a GPU).
#[cfg(feature = "gpu")]
#[test]
fn nvrtc_compiles_the_kernels() {
    match gpu::compile_kernels_ptx() {
        Ok(ptx) => assert!(
            ptx.contains(".entry ternary_gemm"),
            "PTX lacks the kernel entry"
        ),
        Err(e) => {
            assert!(
                !require_gpu(),
                "GAUNTLET_REQUIRE_GPU=1 but NVRTC is unavailable: {e}"
            );
            println!("SKIP no NVRTC ({e})");
        }
    }
}
