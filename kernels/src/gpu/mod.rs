//! GPU kernels (feature `gpu`) and the choice between GPU and CPU.
//!
//! GPU initialization is a classic CI hang, so [`GpuBackend::init`] never blocks past
//! its budget and never panics: it first checks that the driver and NVRTC libraries
//! can be opened (cudarc's loader panics when they are missing), then runs context
//! creation, kernel compilation and module loading on a watchdog thread. Expiry
//! returns [`GpuInitError::TimedOut`] naming the stage that hung; the stuck thread is
//! left behind (a driver call cannot be cancelled) and holds no lock of ours.

#[cfg(feature = "gpu")]
mod cuda;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::cpu::CpuKernels;
use crate::error::{FormatError, KernelError};
use crate::format::TernaryFormat;
use crate::matrix::TernaryMatrix;
use crate::quant::QuantizedActivations;

/// Environment variable holding the GPU initialization budget as a humantime string ("30s").
pub const INIT_TIMEOUT_ENV: &str = "GAUNTLET_GPU_INIT_TIMEOUT";

/// The steps of GPU initialization, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitStage {
    /// Opening `libcuda` / `libnvrtc`.
    DriverLibrary,
    /// `cuInit` and primary-context creation on device 0.
    Context,
    /// NVRTC compilation of the kernels.
    Compile,
    /// Loading the compiled module and its functions.
    LoadModule,
}

impl InitStage {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => InitStage::DriverLibrary,
            1 => InitStage::Context,
            2 => InitStage::Compile,
            _ => InitStage::LoadModule,
        }
    }
}

impl fmt::Display for InitStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InitStage::DriverLibrary => "opening the driver library",
            InitStage::Context => "creating the CUDA context",
            InitStage::Compile => "compiling kernels with NVRTC",
            InitStage::LoadModule => "loading the kernel module",
        })
    }
}

/// Why no GPU backend is available.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum GpuInitError {
    /// No usable GPU here (no driver, no device, built without `gpu`, …).
    #[error("GPU unavailable: {reason}")]
    Unavailable {
        /// What is missing and what to do.
        reason: String,
    },
    /// Initialization did not finish within its budget.
    #[error(
        "GPU initialization timed out after {elapsed:?} (budget {budget:?}) while {stage}; \
         raise gpu_initialization in gauntlet.toml or GAUNTLET_GPU_INIT_TIMEOUT if the driver is just slow"
    )]
    TimedOut {
        /// The stage that was running at the deadline.
        stage: InitStage,
        /// Time waited.
        elapsed: Duration,
        /// The budget.
        budget: Duration,
    },
}

/// A GPU call that failed after initialization.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum GpuError {
    /// The driver reported an error.
    #[error("CUDA driver error during {during}: {message}")]
    Driver {
        /// The operation.
        during: &'static str,
        /// The driver's message.
        message: String,
    },
    /// The format has no GPU kernel.
    #[error("no GPU kernel for {0}; GPU kernels exist for TQ2_0 and I2_S (use the CPU backend)")]
    UnsupportedFormat(TernaryFormat),
    /// A shape or buffer problem.
    #[error(transparent)]
    Format(#[from] FormatError),
}

/// Reads `GAUNTLET_GPU_INIT_TIMEOUT` (a humantime string such as "30s"), or `default`
/// when unset. The CLI passes gauntlet.toml's `[timeouts] gpu_initialization` as `default`.
pub fn init_timeout_from_env(default: Duration) -> Result<Duration, String> {
    parse_init_timeout(std::env::var(INIT_TIMEOUT_ENV).ok().as_deref(), default)
}

/// Parses an init budget: `None` or blank means `default`; otherwise a humantime string.
pub fn parse_init_timeout(value: Option<&str>, default: Duration) -> Result<Duration, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(default),
        Some(v) => humantime::parse_duration(v).map_err(|e| {
            format!("{INIT_TIMEOUT_ENV}={v:?} is not a duration ({e}); write it like \"30s\" or \"1m 30s\"")
        }),
    }
}

/// Compiles the CUDA kernels with NVRTC and returns the PTX, without touching a device:
/// lets a machine with NVRTC but no GPU check the kernel source. Unavailable when
/// NVRTC cannot be loaded (checked before cudarc's loader, which would panic).
#[cfg(feature = "gpu")]
pub fn compile_kernels_ptx() -> Result<String, GpuInitError> {
    if !library_present(NVRTC_LIBS) {
        return Err(GpuInitError::Unavailable {
            reason: "NVRTC (libnvrtc.so) could not be loaded".into(),
        });
    }
    Ok(cuda::compile()?.to_src())
}

/// Whether the NVIDIA driver library can be loaded here (what `init` checks first).
pub fn driver_library_present() -> bool {
    library_present(DRIVER_LIBS)
}

/// Library names tried for the driver (cudarc tries the same family).
const DRIVER_LIBS: &[&str] = &["libcuda.so.1", "libcuda.so"];
/// Library names tried for NVRTC.
const NVRTC_LIBS: &[&str] = &[
    "libnvrtc.so",
    "libnvrtc.so.13",
    "libnvrtc.so.12",
    "libnvrtc.so.11.2",
    "libnvrtc.so.11",
];

/// Whether any of `names` can be dlopen-ed; checked ourselves so cudarc's loader,
/// which panics on a missing library, is never reached without one.
fn library_present(names: &[&str]) -> bool {
    names.iter().any(|name| {
        let Ok(c) = std::ffi::CString::new(*name) else {
            return false;
        };
        // SAFETY: dlopen/dlclose with a valid NUL-terminated name; the handle is closed
        // at once and no symbol from it is used.
        unsafe {
            let handle = libc::dlopen(c.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL);
            if handle.is_null() {
                false
            } else {
                libc::dlclose(handle);
                true
            }
        }
    })
}

/// A ready GPU: a context, a stream and the compiled kernels.
#[derive(Clone)]
pub struct GpuBackend {
    #[cfg(feature = "gpu")]
    device: Arc<cuda::Device>,
    #[cfg(not(feature = "gpu"))]
    _never: Arc<std::convert::Infallible>,
    name: String,
}

impl fmt::Debug for GpuBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuBackend")
            .field("device", &self.name)
            .finish()
    }
}

impl GpuBackend {
    /// Initializes device 0 within `timeout`: Unavailable when there is no driver or
    /// device (checked before any CUDA call), TimedOut when a stage hangs. Never panics.
    pub fn init(timeout: Duration) -> Result<Self, GpuInitError> {
        let start = Instant::now();
        if !cfg!(feature = "gpu") {
            return Err(GpuInitError::Unavailable {
                reason: "gauntlet-kernels was built without the `gpu` feature; rebuild with --features gpu".into(),
            });
        }
        if !library_present(DRIVER_LIBS) {
            return Err(GpuInitError::Unavailable {
                reason: "no NVIDIA driver library (libcuda.so.1) could be loaded; install the driver or run on a GPU runner".into(),
            });
        }
        if !library_present(NVRTC_LIBS) {
            return Err(GpuInitError::Unavailable {
                reason: "the CUDA driver is present but NVRTC (libnvrtc.so) is not; install the CUDA runtime compiler".into(),
            });
        }
        with_deadline(timeout, start, init_on_thread)
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `y = x · Wᵀ` on the GPU (`n × m` outputs), bit-equal to the CPU scalar path.
    /// Uploads the weights on each call; use [`GpuBackend::upload`] to keep them resident.
    pub fn gemm(
        &self,
        w: &TernaryMatrix<'_>,
        x: &QuantizedActivations,
    ) -> Result<Vec<f32>, GpuError> {
        Ok(self.gemm_with_dots(&self.upload(w)?, x, false)?.0)
    }

    /// Copies a matrix's weights to the device.
    pub fn upload(&self, w: &TernaryMatrix<'_>) -> Result<GpuMatrix, GpuError> {
        if w.format() == TernaryFormat::Tq1_0 {
            return Err(GpuError::UnsupportedFormat(w.format()));
        }
        #[cfg(feature = "gpu")]
        {
            self.device.upload(w)
        }
        #[cfg(not(feature = "gpu"))]
        {
            match *self._never {}
        }
    }

    /// Runs a resident matrix; with `want_dots` also returns the int32 chunk dots
    /// (`[r][row][chunk]`) that the bit-exactness tests compare with the CPU.
    pub fn gemm_with_dots(
        &self,
        w: &GpuMatrix,
        x: &QuantizedActivations,
        want_dots: bool,
    ) -> Result<(Vec<f32>, Vec<i32>), GpuError> {
        if x.k() != w.k {
            return Err(FormatError::ShapeMismatch {
                what: "activation row length (K)",
                expected: w.k,
                actual: x.k(),
            }
            .into());
        }
        #[cfg(feature = "gpu")]
        {
            self.device.gemm(w, x, want_dots)
        }
        #[cfg(not(feature = "gpu"))]
        {
            let _ = want_dots;
            match *self._never {}
        }
    }
}

/// Weights resident on the GPU.
pub struct GpuMatrix {
    format: TernaryFormat,
    m: usize,
    k: usize,
    tensor_scale: f32,
    #[cfg(feature = "gpu")]
    bytes: cudarc::driver::CudaSlice<u8>,
}

impl GpuMatrix {
    /// Format, rows and columns.
    pub fn shape(&self) -> (TernaryFormat, usize, usize) {
        (self.format, self.m, self.k)
    }

    /// I2_S's tensor scale (1.0 for per-block formats).
    pub fn tensor_scale(&self) -> f32 {
        self.tensor_scale
    }
}

/// Runs `init` on a watchdog thread and waits for it until `start + timeout`. `init`
/// records its progress in the stage cell so an expiry can say where it hung; a thread
/// still stuck at the deadline is left behind (driver calls cannot be cancelled).
fn with_deadline<T: Send + 'static>(
    timeout: Duration,
    start: Instant,
    init: impl FnOnce(&AtomicU8) -> Result<T, GpuInitError> + Send + 'static,
) -> Result<T, GpuInitError> {
    let stage = Arc::new(AtomicU8::new(InitStage::Context as u8));
    let (tx, rx) = mpsc::channel();
    let worker_stage = Arc::clone(&stage);
    let spawned = std::thread::Builder::new()
        .name("gauntlet-gpu-init".into())
        .spawn(move || {
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| init(&worker_stage)))
                    .unwrap_or_else(|_| {
                        Err(GpuInitError::Unavailable {
                            reason: "the CUDA library panicked during initialization".into(),
                        })
                    });
            // The receiver may have given up at the deadline; nothing to do then.
            let _ = tx.send(result);
        });
    if let Err(e) = spawned {
        return Err(GpuInitError::Unavailable {
            reason: format!("could not start the init thread: {e}"),
        });
    }
    match rx.recv_timeout(timeout.saturating_sub(start.elapsed())) {
        Ok(result) => result,
        Err(_) => Err(GpuInitError::TimedOut {
            stage: InitStage::from_u8(stage.load(Ordering::SeqCst)),
            elapsed: start.elapsed(),
            budget: timeout,
        }),
    }
}

#[cfg(feature = "gpu")]
fn init_on_thread(stage: &AtomicU8) -> Result<GpuBackend, GpuInitError> {
    let device = cuda::Device::init(stage)?;
    let name = device.name.clone();
    Ok(GpuBackend {
        device: Arc::new(device),
        name,
    })
}

#[cfg(not(feature = "gpu"))]
fn init_on_thread(_stage: &AtomicU8) -> Result<GpuBackend, GpuInitError> {
    Err(GpuInitError::Unavailable {
        reason: "built without the `gpu` feature".into(),
    })
}

/// Where kernels run: the GPU when it initializes in time, else the CPU, with the reason.
#[derive(Debug)]
pub enum Backend {
    /// A working GPU.
    Gpu(GpuBackend),
    /// CPU kernels; `gpu` says why the GPU was not used.
    Cpu {
        /// The CPU kernels.
        kernels: CpuKernels,
        /// Why the GPU is not in use.
        gpu: GpuInitError,
    },
}

impl Backend {
    /// The GPU if it initializes within `gpu_timeout`, else CPU kernels (path from
    /// `GAUNTLET_KERNEL`, `threads` threads) carrying the GPU's failure as the reason.
    pub fn best(gpu_timeout: Duration, threads: usize) -> Result<Backend, KernelError> {
        match GpuBackend::init(gpu_timeout) {
            Ok(gpu) => Ok(Backend::Gpu(gpu)),
            Err(gpu) => Ok(Backend::Cpu {
                kernels: CpuKernels::from_env(threads)?,
                gpu,
            }),
        }
    }

    /// One line saying what runs and why.
    pub fn describe(&self) -> String {
        match self {
            Backend::Gpu(g) => format!("GPU ({})", g.name()),
            Backend::Cpu { kernels, gpu } => {
                format!(
                    "CPU ({}, {} threads) because {gpu}",
                    kernels.path(),
                    kernels.threads()
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stage that never finishes (it blocks on a channel the test holds) must come
    /// back as TimedOut naming that stage, at the deadline and not long after.
    #[test]
    fn hung_init_stage_times_out_at_the_deadline() {
        let (release, hang) = mpsc::channel::<()>();
        let budget = Duration::from_millis(50);
        let start = Instant::now();
        let result: Result<(), GpuInitError> = with_deadline(budget, start, move |stage| {
            stage.store(InitStage::Compile as u8, Ordering::SeqCst);
            let _ = hang.recv();
            Ok(())
        });
        let elapsed = start.elapsed();
        drop(release);
        match result {
            Err(GpuInitError::TimedOut {
                stage,
                elapsed: waited,
                budget: b,
            }) => {
                assert_eq!(stage, InitStage::Compile);
                assert_eq!(b, budget);
                assert!(waited >= budget, "gave up early: {waited:?}");
            }
            other => panic!("expected TimedOut, got {other:?}"),
        }
        assert!(
            elapsed < Duration::from_secs(1),
            "overran its budget: {elapsed:?}"
        );
    }

    #[test]
    fn panicking_init_is_reported_not_propagated() {
        let result: Result<(), GpuInitError> =
            with_deadline(Duration::from_secs(5), Instant::now(), |_| {
                panic!("simulated loader panic")
            });
        assert!(
            matches!(result, Err(GpuInitError::Unavailable { reason }) if reason.contains("panicked"))
        );
    }
}
